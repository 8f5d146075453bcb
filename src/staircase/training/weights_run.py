"""The loop papers B and C's training jobs share (``collapse`` for B, ``alignment`` for C).

Both study the weight matrices of stacked bias-free networks (one model per grid cell or seed, all
trained together): measure at step 0 and at geometrically spaced checkpoints, one full-batch step
at a time in between, then write the study's tables, its singular-value spectra and run.json.
A study plugs in what is its own: ``train_step`` (its objective and optimiser), ``measure`` (its
quantities at a checkpoint, appended to ``self.spectra`` and its rows), ``tables``, and the
members of its stack. Paper A's trainer (``staircase.training.trainer``) measures features, not
weights, on a dense-then-sparse schedule, and resumes from checkpoints; these jobs run in minutes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from staircase.records import manifest
from staircase.records.provenance import atomic_write, job_record, write_json
from staircase.records.writer import refuse_symlink
from staircase.training.trainer import choose_device


def checkpoints(steps: int, count: int) -> np.ndarray:
    """Step 0 and ``count`` geometrically spaced steps up to ``steps`` (rounded, unique)."""
    geo = np.round(np.geomspace(1, steps, max(count, 1))).astype(int)
    return np.unique(np.concatenate([[0], geo, [steps]]))


def write_tables_and_spectra(out: Path, tables: dict[str, pd.DataFrame], arrays: dict[str, np.ndarray]) -> None:
    """Each table as ``<name>.parquet`` and the arrays as spectra.npz in ``out``, each file atomically
    (an old manifest.json deleted first: until :func:`seal_study`, the folder is unfinished)."""
    refuse_symlink(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / manifest.NAME).unlink(missing_ok=True)
    for name, frame in tables.items():
        atomic_write(out / f"{name}.parquet", lambda t, f=frame: f.to_parquet(t, index=False))

    def write_npz(tmp):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(out / "spectra.npz", write_npz)


def seal_study(out: Path, tables: dict) -> None:
    """manifest.json, after run.json: its presence says the others are whole (the readers verify
    the folder against it, staircase.records.runs.load_study_run)."""
    manifest.seal(out, names=[*(f"{name}.parquet" for name in tables), "spectra.npz", "run.json"])


class WeightsRun:
    """One study: ``family`` names its config section and results folder. A subclass's
    ``__init__`` calls this one first, then builds its data, network (``self.net``), ``steps``,
    ``log_steps`` and ``diverged_at`` (one entry per member, -1 while healthy)."""

    family = ""

    def __init__(self, cfg: dict, out_dir, progress: bool = True):
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.name = f"{self.family}/{cfg['study']}"
        self.device = choose_device(cfg.get("device", "auto"))
        torch.set_num_threads(int(cfg["train"].get("threads", 1)))
        self.step = 0
        self.elapsed = 0.0
        self.spectra: list[list[np.ndarray]] = []  # per checkpoint: one (members, k) array per layer

    # ---- what a study plugs in ------------------------------------------------------------------
    def train_step(self) -> None:
        raise NotImplementedError

    def measure(self) -> None:
        raise NotImplementedError

    def tables(self) -> dict[str, pd.DataFrame]:
        """The study's parquet tables by name (metrics, layers, ..., claims_inputs)."""
        raise NotImplementedError

    def members(self):
        """The stack's members, in model-axis order, as run.json's status names them."""
        raise NotImplementedError

    def member_arrays(self) -> dict[str, np.ndarray]:
        """Arrays of spectra.npz that label the model axis."""
        raise NotImplementedError

    def record(self) -> dict:
        """run.json's study-specific entries."""
        raise NotImplementedError

    def keep_training(self) -> bool:
        return True

    def summary(self, out_dir) -> str:
        """The job's last line on stderr: what it trained, how long, where the results went."""
        raise NotImplementedError

    # ---- the loop ---------------------------------------------------------------------------------
    def train(self) -> None:
        """Measure at step 0 and at every checkpoint of ``log_steps``, training in between."""
        log_set = set(int(s) for s in self.log_steps)
        bar = tqdm(total=self.steps, desc=self.name, disable=not self.progress, mininterval=5.0, file=sys.stderr)
        t0 = time.perf_counter()
        self.measure()
        while self.step < self.steps and self.keep_training():
            self.train_step()
            self.step += 1
            bar.update(1)
            self.elapsed = time.perf_counter() - t0
            if self.step in log_set:
                self.measure()
        bar.close()
        self.elapsed = time.perf_counter() - t0

    def write_outputs(self) -> None:
        """Every table, spectra.npz (checkpoint steps, the members' labels, ``layer<l>``: member x
        checkpoint x singular value) and run.json, each written atomically, then manifest.json."""
        out = self.out_dir
        spectra = {
            f"layer{l + 1}": np.stack([step[l] for step in self.spectra], axis=1) for l in range(self.net.n_layers)
        }
        arrays = {"steps": np.asarray(self.log_steps[: len(self.spectra)]), **self.member_arrays(), **spectra}
        tables = self.tables()
        write_tables_and_spectra(out, tables, arrays)
        write_json(
            out / "run.json",
            {
                "config": self.cfg,
                "family": self.family,
                "study": self.cfg["study"],
                **self.record(),
                **job_record(self.members(), self.diverged_at, self.step, self.elapsed, self.device),
            },
        )
        seal_study(out, tables)

    @classmethod
    def run(cls, cfg: dict, out_dir, progress: bool = True, **options) -> Path:
        """Train one study and write its results to ``out_dir`` (``options``: the study's own, e.g. a part)."""
        job = cls(cfg, out_dir, progress, **options)
        job.train()
        job.write_outputs()
        print(job.summary(out_dir), file=sys.stderr)
        return Path(out_dir)
