"""CLI: list, info, summary, build, and clean errors for user mistakes (Click's CliRunner)."""

import json
import shutil
import subprocess
import sys

import pytest

from kzoo_cli.main import cli


def run(runner, *args):
    return runner.invoke(cli, list(args), catch_exceptions=False)


def test_help_has_examples(cli_runner):
    for command in ("list", "info", "summary", "build"):
        result = run(cli_runner, command, "--help")
        assert result.exit_code == 0 and "Examples:" in result.output


def test_list_json_and_pattern(cli_runner):
    result = run(cli_runner, "list", "vgg1*", "--json")
    names = [row["name"] for row in json.loads(result.output)]
    assert names == ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]
    table = run(cli_runner, "list", "--family", "lenet")
    assert "lenet5" in table.output and "61,706" in table.output


def test_info_json(cli_runner):
    info = json.loads(run(cli_runner, "info", "lenet5", "--json").output)
    assert info["options"]["pool"]["default"] == "max" and info["params"] == 61_706


def test_unknown_model_did_you_mean_exit_2(cli_runner):
    result = cli_runner.invoke(cli, ["info", "resnet19"])
    assert result.exit_code == 2 and "Did you mean resnet18" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unknown_command_did_you_mean(cli_runner):
    result = cli_runner.invoke(cli, ["sumary", "lenet5"])
    assert result.exit_code == 2 and "Did you mean 'summary'" in result.output


@pytest.mark.parametrize("args,message", [
    (["--input-shape", "28,x"], "28,28,1"),
    (["--num-classes", "0"], "0"),
    (["-o", "colour=red"], "has no option 'colour'"),
    (["-o", "activation=swish"], "must be one of"),
])
def test_malformed_options_exit_2(cli_runner, args, message):
    result = cli_runner.invoke(cli, ["summary", "lenet5", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_summary_numbers(cli_runner):
    data = json.loads(run(cli_runner, "summary", "lenet5", "--input-shape", "28,28,1", "--json").output)
    assert data["trainable_params"] == 61_706 and data["non_trainable_params"] == 0
    assert data["macs"] == 416_520  # conv 117,600 + 240,000, dense 48,000 + 10,080 + 840
    table = run(cli_runner, "summary", "convnet2")
    assert "Trainable params:     3,199,106" in table.output


def test_build_writes_loadable_file(cli_runner, tmp_path):
    out = tmp_path / "m.keras"
    result = run(cli_runner, "build", "mlp", "--output", str(out), "--num-classes", "4", "-o", "hidden_sizes=32,16")
    assert result.exit_code == 0 and out.exists()
    from kzoo.engine.checkpoints import load_model

    model = load_model(str(out))
    assert model.output_shape == (None, 4)
    again = cli_runner.invoke(cli, ["build", "mlp", "--output", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    bad = cli_runner.invoke(cli, ["build", "mlp", "--output", str(tmp_path / "m.h5")])
    assert bad.exit_code == 2 and ".keras" in bad.output


def test_installed_executable_and_python_m():
    exe = shutil.which("kzoo") or str(__import__("pathlib").Path(sys.executable).with_name("kzoo"))
    for command in ([exe, "list", "lenet*"], [sys.executable, "-m", "kzoo", "list", "lenet*"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "lenet5" in result.stdout
    bad = subprocess.run([exe, "info", "lenet6"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Did you mean lenet5" in bad.stderr and "Traceback" not in bad.stderr


def test_shell_completion_lists_models():
    exe = shutil.which("kzoo") or str(__import__("pathlib").Path(sys.executable).with_name("kzoo"))
    env = {"_KZOO_COMPLETE": "bash_complete", "COMP_WORDS": "kzoo info res", "COMP_CWORD": "2",
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([exe], capture_output=True, text=True, env=env, timeout=60)
    assert "resnet18" in result.stdout


def test_closed_pipe_stops_quietly():
    """`kzoo list --json | head -1`: the reader leaves early; no `Error: Broken pipe`, no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "kzoo", "list", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # gone before kzoo writes
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Error" not in stderr and "Traceback" not in stderr, stderr
    assert proc.returncode in (0, 1)  # 1: Click's own exit for a broken pipe
