"""Each contender runs in a fresh Python process with one thread (torch and numpy's BLAS), so that
no contender inherits another's warm caches, threads or memory: :func:`in_process` starts
``python -m staircase.benchmarks.worker <kind> <json kwargs>`` (this module, which imports only the
contenders: the whole bench module cost each worker about a second more of imports), whose :func:`worker_main` runs the
contender (contenders.py) and prints its result as one ``BENCH-RESULT <json>`` line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from staircase.benchmarks.contenders import run_deepxde, run_naive, run_ours, run_user_loop

# one thread everywhere, for every contender: one per job is how the pipeline runs on CPU
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

WORKERS = {"ours": run_ours, "naive": run_naive, "deepxde": run_deepxde, "user_loop": run_user_loop}
RESULT_PREFIX = "BENCH-RESULT "


def worker_main(argv: list[str]) -> int:
    """Entry point of a worker process: ``python -m staircase.benchmarks.worker <kind> <json kwargs>``."""
    kind, kwargs = argv[0], json.loads(argv[1])
    result = WORKERS[kind](**kwargs)
    print(RESULT_PREFIX + json.dumps(result))
    return 0


def in_process(kind: str, env: dict | None = None, **kwargs) -> dict:
    """Run one contender in a fresh Python process with one thread; return its result."""
    full_env = {**os.environ, **SINGLE_THREAD_ENV, **(env or {})}
    src = str(Path(__file__).resolve().parents[2])
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, full_env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "staircase.benchmarks.worker", kind, json.dumps(kwargs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker {kind} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result["process_wall_s"] = wall  # including interpreter start and imports
    return result


if __name__ == "__main__":  # a worker process of in_process
    sys.exit(worker_main(sys.argv[1:]))
