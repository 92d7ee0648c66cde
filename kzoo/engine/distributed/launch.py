"""``kzoo train --devices N`` on torch: N local worker processes started by torch's own launcher.

The workers are started by ``torch.distributed.launcher.api.elastic_launch``, the engine behind ``torchrun``: a
local c10d rendezvous, one process per device, no restarts. Each worker runs :func:`kzoo.train` with the same
arguments; ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` tell it its place (:mod:`kzoo.engine.distributed.torch_ddp`).
The trainer hands its ``train`` function in, so this module never imports the trainer (which imports it).
When one worker fails or dies, the launcher stops the others within its monitor interval (a second or so), so a
run never hangs on a peer that is gone; Ctrl-C stops them all the same way. The last good checkpoint stays, as
the writes of rank 0 are atomic (:mod:`kzoo.engine.runs`).
"""

import logging
import os
import shutil
import tempfile
import uuid

from kzoo.errors import KzooError, TrainingInterrupted

MONITOR_INTERVAL_S = 0.5  # how often the launcher checks its workers
SHUTDOWN_TIMEOUT_S = 3  # SIGTERM, then SIGKILL after this long (a worker stuck in a collective ignores SIGTERM)
_RUN_DIR_FILE = "KZOO_LAUNCH_RUN_DIR_FILE"  # where rank 0 tells the launcher its run folder


class WorkerFailed(KzooError):
    """A worker process died or crashed; every worker was stopped."""

    exit_code = 1


def launch_training(train, plan, model, data, *, config_file, resume, **kwargs):
    """Run ``train`` (:func:`kzoo.train`) in ``plan.count`` local processes; returns what rank 0 returned.

    Raises:
        KzooError: the error a worker raised (a user mistake, a divergence, Ctrl-C), with its exit code.
        WorkerFailed: a worker crashed or was killed.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    for name in list(logging.root.manager.loggerDict):  # the launcher's own log; kzoo reports failures below
        if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    scratch = tempfile.mkdtemp(prefix="kzoo-launch-")
    record = os.path.join(scratch, "run_dir")
    saved_env = {k: os.environ.get(k) for k in (_RUN_DIR_FILE, "OMP_NUM_THREADS")}
    os.environ[_RUN_DIR_FILE] = record
    if plan.simulated and "OMP_NUM_THREADS" not in os.environ:  # the cores shared out between the workers
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // plan.count))
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=plan.count, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          monitor_interval=MONITOR_INTERVAL_S, start_method="spawn",
                          shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    if plan.ids:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", ",".join(map(str, plan.ids)))
    try:
        results = elastic_launch(config, _worker)(train, model, data, config_file, resume, kwargs)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        how = (f"was killed by signal {failure.signal_name()}" if failure.exitcode < 0
               else f"exited with status {failure.exitcode}")
        raise WorkerFailed(f"Worker {rank} of {plan.count} {how}; every worker was stopped. "
                           f"{_kept(record)}") from None
    except (SignalException, KeyboardInterrupt):
        raise TrainingInterrupted(f"Interrupted; every worker was stopped. {_kept(record)}") from None
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(scratch, ignore_errors=True)
    outcomes = [results[r] for r in sorted(results)]
    for outcome in outcomes:  # rank 0's error first: it is the one that explains the run
        if "error" in outcome:
            error = KzooError(outcome["error"])
            error.exit_code = outcome["exit_code"]
            raise error
    return outcomes[0]["result"]


def _kept(record):
    """Which checkpoint survived, and how to continue."""
    from kzoo.engine.runs import read_state

    try:
        with open(record, encoding="utf-8") as handle:
            run_dir = handle.read().strip()
    except OSError:
        return "No run folder was written yet."
    done = read_state(run_dir)["epochs_done"]
    if not done:
        return f"No epoch of {run_dir} was completed."
    return (f"{os.path.join(run_dir, 'last.keras')} (epoch {done}) is kept; continue with: "
            f"kzoo train --resume {run_dir}")


def record_run_dir(run_dir):
    """Rank 0 tells the launcher (if kzoo started it) which run folder it claimed."""
    path = os.environ.get(_RUN_DIR_FILE)
    if path and run_dir:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(run_dir)


def _worker(train, model, data, config_file, resume, kwargs):
    """One worker: ``train``, its user-facing error returned to the launcher instead of a traceback."""
    try:
        return {"result": train(model, data, config_file=config_file, resume=resume, **kwargs)}
    except KzooError as exc:
        return {"error": str(exc), "exit_code": getattr(exc, "exit_code", 2)}
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the group: the launcher stops and reports
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while this worker ends: no traceback
        return {"error": "Interrupted.", "exit_code": 130}
