"""Where a result came from, and writing results so that no reader sees half a file."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from staircase.errors import ConfigError
from staircase.version import __version__


def git_state(cwd: str | os.PathLike | None = None) -> dict:
    """Commit and dirty flag of the checkout the code runs from (None outside git)."""
    cwd = cwd or Path(__file__).resolve().parents[1]  # the package's folder, inside its checkout
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return {"git_commit": commit, "git_dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def provenance(device: str) -> dict:
    import torch  # here, not at the top: atomic_write's readers (audit, notebooks) never need torch

    return {
        "package_version": __version__,
        **git_state(),
        "python": platform.python_version(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "device": device,
        "device_name": torch.cuda.get_device_name()
        if device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "host": socket.gethostname(),
    }


def job_record(members, diverged_at, steps: int, elapsed: float, device: str) -> dict:
    """The part of ``run.json`` every training job writes alike: each member's (seed's or cell's)
    status as staircase.records.runs parses it ("ok" / "diverged at step N"), whether any diverged, wall
    time and throughput, and the provenance. ``diverged_at``: step per member, < 0 if it did not."""
    diverged_at = np.asarray(diverged_at)
    return {
        "status": {str(m): ("ok" if d < 0 else f"diverged at step {int(d)}") for m, d in zip(members, diverged_at)},
        "diverged": bool((diverged_at >= 0).any()),
        "wall_time_s": round(elapsed, 3),
        "steps_per_s": round(steps / elapsed, 2) if elapsed > 0 else None,
        **provenance(device),
    }


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call write(tmp_path) then rename onto path: readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600: collaborators could not read it
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path, obj) -> None:
    def _w(tmp):
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=str)
            fh.write("\n")

    atomic_write(path, _w)


class AlreadyRunning(RuntimeError):
    """Another live process holds the lock: the same job is running twice."""


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, what: str, remove: bool = False):
    """Hold an exclusive lock on ``path`` (created if needed) for the block, or raise
    AlreadyRunning at once. The kernel drops the lock when its process dies, even by SIGKILL, so a
    killed job never leaves a stale lock; an orphaned job that is still running (its Snakemake was
    killed) keeps it, and a re-run of the same job stops instead of writing the same files. With
    ``remove``, the lock file is deleted (still locked) when the block succeeds: a finished job
    leaves nothing behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise AlreadyRunning(
                f"{what} is already running ({holder}, lock {path}); wait for it to finish or end it, then re-run"
            ) from None
        except OSError:  # a filesystem without locks: go on unguarded rather than fail the job
            locked = False
        if locked:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            fh.flush()
        yield
        if remove and locked:
            with contextlib.suppress(OSError):
                os.unlink(path)


_HELD: list = []  # the locks this process holds until it exits


def hold(path: str | os.PathLike, what: str) -> None:
    """Take the exclusive lock on ``path`` (see :func:`exclusive`) for the rest of this process's
    life, or raise AlreadyRunning at once."""
    lock = exclusive(path, what)
    lock.__enter__()
    _HELD.append(lock)


@contextlib.contextmanager
def output_to(path: str | os.PathLike | None):
    """Send this process's output to the file ``path`` for the block, created or truncated:
    Python's stdout and stderr, and the file descriptors 1 and 2 (what C code and child processes
    write); nothing when ``path`` is None. A ConfigError raised in the block is written there too
    before it propagates (the caller reports it again on the restored stderr)."""
    if path is None:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "w", buffering=1) as fh:
        try:
            os.dup2(fh.fileno(), 1)
            os.dup2(fh.fileno(), 2)
            with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
                try:
                    yield
                except ConfigError as err:
                    print(f"staircase: error: {err}", file=sys.stderr)
                    raise
        finally:
            fh.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
