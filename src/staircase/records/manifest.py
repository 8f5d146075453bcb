"""A run folder's ``manifest.json``: the proof that its files are whole and belong together.

The writer (:func:`staircase.records.writer.write_results`) writes it LAST, atomically, once every
other file is in place: a folder without one is unfinished. It holds, per file, its sha256, byte
size and shape (a table's rows and columns, an archive's array shapes), and the run's identity
(experiment, variant, seeds, and the sha256 of its config). :func:`verify` checks a folder
against it before any reader uses a byte of it: a bit flip anywhere, a file cut short, swapped in
from another run, or a folder that is another run's (copied or symlinked under another name) is
refused with one line naming the file and the remedy. docs/results-format.md describes the format.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from staircase.errors import UnreadableResult

NAME = "manifest.json"
FORMAT = 1
REMEDY = "delete the run's folder and run snakemake again, which re-runs the job that writes it"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_hash(config: dict) -> str:
    """The sha256 of a run config, written canonically (sorted keys)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_names(info: dict) -> tuple:
    """(experiment, variant) of a run.json: a paper-A run's config names them; a paper B/C study's
    run.json gives its family and study (its folder is <root>/runs/<family>/<study>)."""
    if "family" in info:
        return info.get("family"), info.get("study")
    config = info.get("config") or {}
    return config.get("experiment"), config.get("variant")


def identity(info: dict) -> dict:
    """Which run a run.json is: its names, seeds and the hash of its config."""
    experiment, variant = run_names(info)
    return {
        "experiment": experiment,
        "variant": variant,
        "seeds": [int(s) for s in info["seeds"]],
        "config_sha256": config_hash(info["config"]),
    }


FILES = ("metrics.parquet", "ranks.parquet", "spectra.npz", "run.json")


def shape(path: Path) -> dict:
    """A table's rows and columns, an archive's array shapes; nothing for a JSON file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.read_schema(path)
        return {"rows": pq.read_metadata(path).num_rows, "columns": [n for n in meta.names if n != "__index_level_0__"]}
    if path.suffix == ".npz":
        import numpy as np

        with np.load(path) as npz:
            return {"arrays": {k: list(npz[k].shape) for k in npz.files}}
    return {}


def seal(folder: str | Path, names=FILES) -> None:
    """Write ``folder``'s manifest.json (atomically) for its files as they are now, with the
    identity its run.json gives: the writer's last step (and a test's, after it edits a run on purpose)."""
    from staircase.records.provenance import write_json

    folder = Path(folder)
    info = json.loads((folder / "run.json").read_text())
    files = {
        name: {"sha256": sha256(folder / name), "bytes": (folder / name).stat().st_size, **shape(folder / name)}
        for name in names
        if (folder / name).exists()  # a test's run may lack spectra.npz; a reader of it then finds it missing
    }
    manifest = {"format": FORMAT, "identity": identity(info), "files": files}
    write_json(folder / NAME, manifest)


def _refuse(path, problem: str) -> UnreadableResult:
    return UnreadableResult(f"{path}: {problem}; {REMEDY}")


def read(folder: Path) -> dict:
    """The folder's manifest, checked for shape; UnreadableResult (one line) otherwise."""
    path = folder / NAME
    if not path.is_file():
        raise _refuse(path, "missing (the run is unfinished, or was written before manifests)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise _refuse(path, f"cannot be read ({' '.join(str(err).split())[:120]})") from None
    ok = isinstance(manifest, dict) and isinstance(manifest.get("files"), dict)
    ok = ok and isinstance(manifest.get("identity"), dict) and manifest.get("format") == FORMAT
    if not ok or not all(isinstance(e, dict) and "sha256" in e and "bytes" in e for e in manifest["files"].values()):
        raise _refuse(path, "is not a manifest of this format (damaged, or from another version)")
    return manifest


def verify(folder: str | Path) -> dict:
    """Check every file the manifest names against its size and sha256; return the manifest."""
    folder = Path(folder)
    manifest = read(folder)
    for name, want in manifest["files"].items():
        path = folder / name
        if Path(name).name != name or not path.is_file():
            raise _refuse(path, "missing, though the manifest names it")
        if path.stat().st_size != want["bytes"] or sha256(path) != want["sha256"]:
            raise _refuse(path, "does not match its manifest.json (damaged, or swapped in from another run)")
        have = shape(path)
        if have != {key: want.get(key) for key in have}:  # the manifest's own record of the file, checked too
            raise _refuse(folder / NAME, f"its record of {name} is not the file's (the manifest is damaged)")
    return manifest


def check_identity(folder: Path, manifest: dict, info: dict) -> None:
    """The run.json's config and seeds are those the manifest was written for, and a folder laid
    out as <root>/runs/<experiment>/<variant> carries that experiment and variant."""
    want = manifest["identity"]
    have = identity(info)
    for key in ("experiment", "variant", "seeds", "config_sha256"):
        if want.get(key) != have[key]:
            raise _refuse(folder / "run.json", f"its {key} is not the manifest's (a file from another run)")
    laid_out = folder.parent.parent.name == "runs"
    if laid_out and (folder.parent.name, folder.name) != (have["experiment"], have["variant"]):
        raise _refuse(
            folder, f"holds the run of {have['experiment']}/{have['variant']} (copied, moved or linked from there)"
        )
