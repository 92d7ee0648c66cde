"""Run :mod:`replica_runs` in a fresh process (the device count is fixed before the framework starts)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def replica_run(tmp_path_factory):
    """``replica_run(backend, part)`` -> ``(weights, scores, folder)`` of that part, run once per module."""
    done = {}

    def run(backend, part):
        if (backend, part) not in done:
            out = tmp_path_factory.mktemp(f"{backend}-{part}")
            env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
            env.pop("XLA_FLAGS", None)
            result = subprocess.run([sys.executable, str(HERE / "replica_runs.py"), backend, part, str(out)],
                                    env=env, capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, result.stderr[-4000:]
            weights = dict(np.load(out / f"{part}.npz"))
            done[backend, part] = weights, json.loads((out / f"{part}.json").read_text()), out
        return done[backend, part]

    return run

