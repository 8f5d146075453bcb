"""The README is the door and the docs site holds the rest (docs/index.md): the README's size,
contents and links; the reference pages generated from the schema and the parser; and the quick
starts' commands, each run here (cheaply) or named with the test that runs it.

`make docs` (inside `make test`) builds the site with `mkdocs build --strict`."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from helpers import REPO, snakemake

README = (REPO / "README.md").read_text()
QUICK_STARTS = ("Reproduce the papers", "Your own model: the tracker", "One experiment", "A tiny tagged run")
STAIRCASE = str(Path(sys.executable).parent / "staircase")


def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs/tools/hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def section(heading: str) -> str:
    return README.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def commands(heading: str) -> list[str]:
    """The shell commands of a README section's bash blocks, comments dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", section(heading), re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


# ---- the README -------------------------------------------------------------------------------
def test_readme_is_the_door():
    assert len(README) <= 15_000, f"README.md has {len(README)} characters"
    headings = re.findall(r"(?m)^## (.+)$", README)
    assert headings[0] == "Contents" and {*QUICK_STARTS, "Results", "What you get, and where"} <= set(headings)
    contents = section("Contents")
    for heading in headings[1:]:  # the table of contents reaches every section, by its anchor
        anchor = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        assert f"(#{anchor})" in contents, heading
    assert "<!-- results-table:start" in section("Results") and "<!-- results-table:end -->" in section("Results")


def test_readme_links_resolve():
    generated = {"docs/reference/config.md", "docs/reference/cli.md"}  # written by the site's build
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README):
        if not target.startswith("http"):
            assert (REPO / target).exists() or target in generated, target


# ---- the generated reference pages -------------------------------------------------------------
def schema_keys(node, out: set) -> set:
    for key, value in (node.get("properties") or {}).items():
        out.add(key)
        schema_keys(value, out)
    for value in (node.get("$defs") or {}).values():
        schema_keys(value, out)
    return out


def test_configuration_reference_names_every_key_of_the_schema():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    page = hooks().config_reference()
    named = set(re.findall(r"^\| `(?:[\w.]+\.)?(\w+)`", page, re.M))
    assert schema_keys(schema, set()) - named == set()
    assert "| `job_memory_gb` | `auto` or number (> 0, ≤ 1000000000.0) | `auto` |" in page


def test_cli_reference_is_the_parser_help():
    from staircase.cli import parser

    page = hooks().cli_reference()
    subcommands = hooks()._subcommands(parser())
    assert subcommands and all(f"## staircase {name}\n" in page for name in subcommands)
    assert subcommands["audit"].format_help().split("\n\n")[-1].strip() in page


# ---- the quick starts --------------------------------------------------------------------------
# A command the tests do not run here says where it is run, or why not.
ELSEWHERE = {
    "python": "tests/test_install.py runs the tracker example in an environment without the workflow",
    "staircase audit --runs results/runs/my_model/base": "tests/test_install.py and tests/test_tracker.py",
    "papermill notebooks/staircase.ipynb": "tests/test_tracker.py::test_notebooks_draw_a_tracked_run (slow)",
}


def test_every_quick_start_command_is_run_or_accounted_for():
    handled = ("make ", "staircase variants", "staircase train", "staircase audit --runs results/try", "snakemake ")
    for heading in QUICK_STARTS:
        for command in commands(heading):
            assert command.startswith(handled) or any(command.startswith(k) for k in ELSEWHERE), command
    assert re.search(r"```python\n", section("Your own model: the tracker"))


def test_reproduce_the_papers_targets_exist():
    for command in commands("Reproduce the papers"):
        res = subprocess.run([*command.split()[:2], "--dry-run"], cwd=REPO, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


def in_tmp(command: str, tmp: Path) -> list[str]:
    """A README command as run from a checkout, with its results written under tmp instead."""
    words = command.split()
    words = [str(tmp / w) if w.startswith("results/") else w for w in words]
    return [STAIRCASE if words[0] == "staircase" else words[0], *words[1:]]


def test_one_experiment_runs(tmp_path):
    for command in commands("One experiment"):
        if command.startswith("snakemake"):
            res = snakemake(*command.split()[1:], "--dry-run", "--nolock", cwd=REPO)
        else:
            res = subprocess.run(in_tmp(command, tmp_path), cwd=REPO, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{command}: {res.stderr[-2000:]}"
    assert (tmp_path / "results/try/fit1d/audit/claims.csv").exists()


def planned_outputs(res: subprocess.CompletedProcess) -> list[str]:
    assert res.returncode == 0, res.stderr[-3000:]
    return [path for line in res.stdout.splitlines() if line.strip().startswith("output:")
            for path in line.split(":", 1)[1].strip().split(", ")]  # fmt: skip


def test_tiny_tagged_run_is_the_tiny_config_alone(tmp_path):
    """The README's tiny run, dry, from the checkout, plans exactly the jobs of the tiny config run in
    a folder without config.yaml (tests/test_workflow.py runs those jobs end to end), under its tag."""
    (command,) = commands("A tiny tagged run")
    args = command.split()[1:]
    readme = planned_outputs(snakemake(*args, "--dry-run", "--nolock", "--printshellcmds", cwd=REPO))
    tag = dict(a.split("=", 1) for a in args[args.index("--config") + 1 :])["tag"]
    # the calibration is computed once per settings and code in results/calibration/<hash>/, shared by roots
    assert readme and all(p.startswith((f"results/small-{tag}/", "results/calibration/")) for p in readme)
    tiny = REPO / args[args.index("--configfile") + 1]
    shutil.copy(tiny, tmp_path / "tiny.yaml")
    alone = planned_outputs(snakemake("--cores", "1", "--configfile", "tiny.yaml", "--config", f"tag={tag}",
                                      "--dry-run", "--printshellcmds", cwd=tmp_path))  # fmt: skip
    assert sorted(readme) == sorted(alone)


# ---- the reference run's key figures (docs/results.md) -----------------------------------------


def test_the_key_figures_on_the_site_are_the_reference_runs_own():
    """Each figure docs/results.md shows is listed in provenance.json with the commit of the run
    that drew it, and its bytes are the copy that script made (a figure edited by hand fails)."""
    import hashlib
    import json

    folder = REPO / "docs/results/figures"
    provenance = json.loads((folder / "provenance.json").read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", provenance["commit"])
    shown = re.findall(r"\]\(results/figures/([\w]+)\.png\)", (REPO / "docs/results.md").read_text())
    assert shown and set(shown) == set(provenance["figures"]), "docs/results.md and provenance.json disagree"
    assert provenance["commit"][:7] in (REPO / "docs/results.md").read_text()
    for stem, record in provenance["figures"].items():
        data = (folder / f"{stem}.png").read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"], f"{stem}.png is not the recorded copy"
    assert {p.stem for p in folder.glob("*.png")} == set(provenance["figures"]), "a figure no page shows"
