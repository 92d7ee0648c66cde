"""`.ci/run` runs exactly the README's set-up and test commands (the blocks between the ci markers)."""

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CI = ROOT / ".ci" / "run"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def readme_blocks(text):
    """``{name: command}`` of every ```-fenced block between ``<!-- ci:NAME ... -->`` and ``<!-- /ci:NAME -->``."""
    blocks = {}
    for name, body in re.findall(r"^<!-- ci:(\w+)[^\n]*-->\n(.*?)^<!-- /ci:\1 -->", text, re.M | re.S):
        fenced = re.fullmatch(r"```\w*\n(.*?)\n```\n", body, re.S)
        assert fenced, f"the ci:{name} block must hold one fenced code block"
        blocks[name] = fenced.group(1)
    return blocks


def test_ci_runs_the_readme_commands():
    blocks = readme_blocks((ROOT / "README.md").read_text())
    assert set(blocks) == {"setup", "test"}
    printed = subprocess.run(["bash", str(CI), "--print"], capture_output=True, text=True, check=True).stdout
    assert printed == f"{blocks['setup']}\n{blocks['test']}\n"


def test_the_setup_uses_the_pip_a_new_venv_brings():
    setup = readme_blocks((ROOT / "README.md").read_text())["setup"]
    assert setup.startswith("python -m venv .venv && . .venv/bin/activate && pip install ")
    assert "--upgrade pip" not in setup and "-U pip" not in setup  # CI must see what a new user sees
    assert "./plugins/kzoo-mobilenet" in setup and "hypothesis" in (ROOT / "pyproject.toml").read_text()


def _fake_checkout(tmp_path, setup, tests):
    (tmp_path / ".ci").mkdir()
    shutil.copy(CI, tmp_path / ".ci" / "run")
    (tmp_path / "README.md").write_text(
        f"# x\n\n<!-- ci:setup -->\n```bash\n{setup}\n```\n<!-- /ci:setup -->\n\ntext\n\n"
        f"<!-- ci:test -->\n```bash\n{tests}\n```\n<!-- /ci:test -->\n")
    return subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=60)


def test_ci_executes_the_blocks_in_one_shell_and_fails_with_them(tmp_path):
    ran = _fake_checkout(tmp_path, "export STEP=setup && echo one > order", "echo $STEP-test >> order")
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "order").read_text() == "one\nsetup-test\n"  # the set-up's environment reaches the tests
    (tmp_path / "failing").mkdir()
    failing = _fake_checkout(tmp_path / "failing", "true", "true && false")
    assert failing.returncode != 0 and "README tests failed" in failing.stderr


def test_ci_refuses_a_readme_without_the_blocks(tmp_path):
    (tmp_path / ".ci").mkdir()
    shutil.copy(CI, tmp_path / ".ci" / "run")
    (tmp_path / "README.md").write_text("# no markers\n")
    ran = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 1 and "no ci:setup or ci:test block" in ran.stderr
