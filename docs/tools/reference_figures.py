"""Copy the reference run's key figures into the documentation site, with where they came from.

    python docs/tools/reference_figures.py --results <root of a finished default run>

The site's "What reproduced" page (docs/results.md) shows the key figures of the run whose verdicts
are committed as docs/results/claims.csv. They are that run's own PNGs, scaled down for the web
(Pillow: at most ``WIDTH`` pixels wide, 256 colours), written to docs/results/figures/ beside provenance.json:
the commit and host every run of the root was trained at (one commit, a clean tree, or the script
refuses), and the SHA-256 of each source figure and of each copy, so the page's figures can be
traced to the run and a copy edited by hand fails tests/test_docs.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from PIL import Image

DOCS = Path(__file__).resolve().parents[1]
OUT = DOCS / "results" / "figures"
WIDTH = 1000
# the key figures, in the order docs/results.md shows them: (figure stem, claims it shows)
KEY_FIGURES = [
    ("staircase_fit1d", "A1, A2"),
    ("spectra_fit1d", "A1"),
    ("layers_fit1d", "A5"),
    ("bound", "A3"),
    ("universality_universality", "A4"),
    ("regime_map", "A1-regime"),
    ("methods_curves_methods_fit1d", "A6, A7"),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_identity(root: Path) -> dict:
    """The one commit (clean tree) and host every run.json under ``root/runs`` records."""
    records = [json.loads(p.read_text()) for p in sorted((root / "runs").glob("*/*/run.json"))]
    if not records:
        sys.exit(f"reference_figures: {root}/runs holds no run.json; give the root of a finished run")
    commits = {r.get("git_commit") for r in records}
    if len(commits) != 1 or None in commits or any(r.get("git_dirty") for r in records):
        sys.exit(f"reference_figures: the runs under {root} come from {sorted(map(str, commits))} or a changed tree")
    return {"commit": commits.pop(), "hosts": sorted({r.get("host") for r in records}), "runs": len(records)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", required=True, type=Path, help="the results root of a finished default run")
    args = ap.parse_args(argv)
    identity = run_identity(args.results)
    OUT.mkdir(parents=True, exist_ok=True)
    figures = {}
    for stem, claims in KEY_FIGURES:
        source = args.results / "figures" / f"{stem}.png"
        if not source.is_file():
            sys.exit(f"reference_figures: {source} missing; run the default workflow to the end first")
        copy = OUT / f"{stem}.png"
        with Image.open(source) as image:
            if image.width > WIDTH:
                image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
            # a plot has few colours: a 256-colour palette keeps it legible at a fraction of the size
            image.convert("RGB").quantize(256).save(copy, optimize=True)
        figures[stem] = {"claims": claims, "source_sha256": sha256(source), "sha256": sha256(copy)}
    provenance = {**identity, "width_px": WIDTH, "figures": figures}
    (OUT / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"reference_figures: {len(figures)} figures of commit {identity['commit'][:7]} in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
