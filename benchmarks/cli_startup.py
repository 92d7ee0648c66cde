"""CLI start-up time: ``kzoo --help`` and ``kzoo list`` against ``python -c pass``, median of N runs each.

    python benchmarks/cli_startup.py [--runs 15] [--json]

Runs ``python -m kzoo_cli.main`` from this checkout (``cli/`` and ``kzoo/`` of the worktree, not an installed copy), interleaving the
three commands run by run, and checks that neither command imported keras, torch, tensorflow or jax.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = ("import runpy, sys; sys.argv = ['kzoo'] + sys.argv[1:]; "
         "code = 0\ntry: runpy.run_module('kzoo_cli.main', run_name='__main__')\n"
         "except SystemExit as e: code = e.code or 0\n"
         "heavy = sorted(m for m in ('keras', 'torch', 'tensorflow', 'jax') if m in sys.modules)\n"
         "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n'); sys.exit(code)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    # this checkout's ``cli/`` is the installed package ``kzoo_cli``: expose it under that name first
    import tempfile

    shim = tempfile.mkdtemp(prefix="kzoo-cli-")
    os.symlink(os.path.join(ROOT, "cli"), os.path.join(shim, "kzoo_cli"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([shim, ROOT, os.environ.get("PYTHONPATH", "")]))
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "kzoo --help": [sys.executable, "-m", "kzoo_cli.main", "--help"],
                "kzoo list": [sys.executable, "-m", "kzoo_cli.main", "list"]}
    times = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    heavy = {}
    for name, extra in (("kzoo --help", ["--help"]), ("kzoo list", ["list"])):
        out = subprocess.run([sys.executable, "-c", CHECK, *extra], env=env, capture_output=True, text=True)
        heavy[name] = [line[6:] for line in out.stderr.splitlines() if line.startswith("HEAVY=")][-1:] or ["?"]
    base = statistics.median(times["python -c pass"])
    result = {name: {"median_s": round(statistics.median(t), 4), "ratio_to_python": round(statistics.median(t) / base, 2)}
              for name, t in times.items()}
    for name in heavy:
        result[name]["heavy_imports"] = heavy[name][0] or "none"
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    for name, r in result.items():
        if isinstance(r, dict):
            print(f"{name:16s} {r['median_s'] * 1000:7.1f} ms  {r['ratio_to_python']:5.2f}x python -c pass"
                  + (f"  heavy imports: {r['heavy_imports']}" if "heavy_imports" in r else ""))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
