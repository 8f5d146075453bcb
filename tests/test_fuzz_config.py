"""A generated fuzz of config.yaml: mutations of the tiny test config by type, sign, NaN and
infinity, size, name and structure, as a careless user would make them. Every mutation must be
either rejected cleanly (one line naming the key, no traceback, nothing written) or accepted, in
which case a tiny job trains to completion, or stops cleanly at its start (say a loss that
overflows before any step).

Most mutations go through `staircase check-config` in-process (the same checks the workflow runs);
a sample also goes through `staircase check-config` and `snakemake -n` as processes, next to an
existing results/ folder that must stay untouched. The list is built by code from
.test/config/config.yaml and is the same on every run."""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO, snakemake

from staircase import cli
from staircase.workflow import config as cfgmod

TINY = REPO / ".test" / "config" / "config.yaml"
NAN, INF = float("nan"), float("inf")


def _by_type(value):
    """(kind, mutated value) pairs for one setting, by its type."""
    if isinstance(value, bool):
        return [("string", "yes"), ("number", 1)]
    if isinstance(value, int):
        return [
            ("negative", -3),
            ("zero", 0),
            ("float", float(value)),
            ("huge", 10**12),
            ("string", str(value)),
            ("nan", NAN),
        ]
    if isinstance(value, float):
        return [
            ("nan", NAN),
            ("inf", INF),
            ("-inf", -INF),
            ("negated", -value),
            ("zero", 0.0),
            ("huge", 1.0e30),
            ("string", "1e-3"),
        ]
    if isinstance(value, str):
        return [("empty", ""), ("long", "x" * 300), ("unknown", "unknown"), ("number", 42)]
    if isinstance(value, list):
        return [("empty list", []), ("repeated item", value + value[:1]), ("scalar", value[0])]
    if isinstance(value, dict):
        return [("list", list(value)), ("null", None), ("unknown key", {**value, "colour": "blue"})]
    return []


def _nodes(node, path=()):
    """Every setting and section below the top, with its path."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        yield (*path, key), value
        yield from _nodes(value, (*path, key))


def _set(config, path, value):
    out = copy.deepcopy(config)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _edit(config, fn):
    out = copy.deepcopy(config)
    fn(out)
    return out


def _defaults_mutations(base: dict) -> list[tuple[str, object]]:
    """The mutations by type of ``experiments.defaults``, fit1d's shared blocks moved there (the
    grammar of config.yaml): a wrong default must be named as one."""
    out = []
    shared = ("model", "rank", "log", "seeds")
    with_defaults = copy.deepcopy(base)
    fit1d = with_defaults["experiments"].pop("fit1d")
    with_defaults["experiments"] = {
        "defaults": {k: fit1d.pop(k) for k in shared},
        "fit1d": fit1d,
        **with_defaults["experiments"],
    }
    for path, value in _nodes(with_defaults["experiments"]["defaults"], ("experiments", "defaults")):
        for kind, mutated in _by_type(value):
            out.append((f"defaults {'.'.join(map(str, path))}: {kind}", _set(with_defaults, path, mutated)))
    return out


def _replaced(text: str, old: str, new: str) -> bytes:
    assert old in text, old
    return text.replace(old, new, 1).encode()


def _yaml_mutations(text: str) -> list[tuple[str, bytes]]:
    """Issue 26's class 1, as raw files: YAML that is not what it looks like (duplicate keys,
    YAML 1.1 readings, aliases that bomb or recurse, nesting, templates)."""
    bomb = "".join(f"b{i}: &b{i} [{', '.join([f'*b{i - 1}' if i else 'x'] * 10)}]\n" for i in range(8))
    return [
        ("yaml: experiments twice", (text + "experiments: {}\n").encode()),
        ("yaml: seeds twice", _replaced(text, "    seeds: [0, 1]\n", "    seeds: [0, 1]\n    seeds: [0]\n")),
        ("yaml: width twice in a flow mapping", _replaced(text, "width: 12,", "width: 4, width: 12,")),
        ("yaml: octal steps", _replaced(text, "steps: 150", "steps: 0150")),
        ("yaml: base-60 width", _replaced(text, "width: 12", "width: 1:30")),
        ("yaml: yes for an activation", _replaced(text, "activation: tanh", "activation: yes")),
        ("yaml: off for a learning rate", _replaced(text, "lr: 5.0e-3", "lr: off")),
        ("yaml: alias bomb", (text + bomb).encode()),
        (
            "yaml: alias bomb of mappings",
            (
                text
                + "m0: &m0 {a: 1, b: 2}\n"
                + "".join(f"m{i}: &m{i} {{{', '.join(f'k{j}: *m{i - 1}' for j in range(10))}}}\n" for i in range(1, 8))
            ).encode(),
        ),
        ("yaml: an alias inside itself", (text + "loop: &loop [1, *loop]\n").encode()),
        ("yaml: nested 5000 deep", (text + "deep: " + "[" * 5000 + "]" * 5000 + "\n").encode()),
        ("yaml: a template", ("__use_yte__: true\n" + text).encode()),
    ]


def _reliability_mutations(base: dict) -> list[tuple[str, object]]:
    """Issue 26's classes 2 and 3: names that are no strings, end in a newline or collide when
    case is folded; numbers that train nothing in the run's precision or overflow a size."""
    import datetime

    def exp(c):
        return c["experiments"]["fit1d"]

    def rename(new):
        return lambda c: c["experiments"].update({new: c["experiments"].pop("fit1d")})

    return [
        *((f"experiment named {n!r} (not a string)", _edit(base, rename(n))) for n in (7, True, None)),
        ("experiment named a date", _edit(base, rename(datetime.date(2024, 1, 2)))),
        (
            "variant named 'base\\n' beside 'base'",
            _edit(base, lambda c: exp(c).update(variants={"base": {}, "base\n": {}})),
        ),
        ("experiment named 'fit1d\\n'", _edit(base, rename("fit1d\n"))),
        ("experiments fit1d and FIT1D", _edit(base, lambda c: c["experiments"].update(FIT1D=copy.deepcopy(exp(c))))),
        ("variants lr and LR", _edit(base, lambda c: exp(c).update(variants={"lr": {}, "LR": {}}))),
        ("lr 5e-324", _set(base, ("experiments", "fit1d", "train", "lr"), 5e-324)),
        ("lr 1e-40 in float32", _set(base, ("experiments", "fit1d", "train", "lr"), 1e-40)),
        ("init_gain 5e-324", _set(base, ("experiments", "fit1d", "model", "init_gain"), 5e-324)),
        ("job_memory_gb 1e308", _edit(base, lambda c: c.update(job_memory_gb=1e308))),
    ]


RELIABILITY_LABELS = [
    "yaml: experiments twice",
    "yaml: seeds twice",
    "yaml: width twice in a flow mapping",
    "yaml: octal steps",
    "yaml: base-60 width",
    "yaml: yes for an activation",
    "yaml: off for a learning rate",
    "yaml: alias bomb",
    "yaml: alias bomb of mappings",
    "yaml: an alias inside itself",
    "yaml: nested 5000 deep",
    "yaml: a template",
    "experiment named 7 (not a string)",
    "experiment named True (not a string)",
    "experiment named None (not a string)",
    "experiment named a date",
    "variant named 'base\\n' beside 'base'",
    "experiment named 'fit1d\\n'",
    "experiments fit1d and FIT1D",
    "variants lr and LR",
    "lr 5e-324",
    "lr 1e-40 in float32",
    "init_gain 5e-324",
    "job_memory_gb 1e308",
]


def mutations() -> list[tuple[str, object]]:
    """[(label, config dict or raw file bytes)], deterministic."""
    base = yaml.safe_load(TINY.read_text())
    out = []
    for path, value in _nodes(base):
        for kind, mutated in _by_type(value):
            out.append((f"{'.'.join(map(str, path))}: {kind}", _set(base, path, mutated)))
    out += _defaults_mutations(base)
    fit = ("experiments", "fit1d")

    def exp(c):
        return c["experiments"]["fit1d"]

    def rename(new):
        return lambda c: c["experiments"].update({new: c["experiments"].pop("fit1d")})

    def variants(*names):
        return lambda c: exp(c).update(variants={n: {} for n in names})

    out += [
        # sizes beyond the machine (within the schema's bounds)
        ("width 60000: memory", _set(base, (*fit, "model", "width"), 60000)),
        (
            "points 5e6, width 500: memory",
            _edit(base, lambda c: (exp(c)["task"].update(train_points=5_000_000), exp(c)["model"].update(width=500))),
        ),
        ("depth 1e6", _set(base, (*fit, "model", "depth"), 10**6)),
        ("seed 2^64", _set(base, (*fit, "seeds"), [2**64])),
        ("job_memory_gb tiny", _edit(base, lambda c: c.update(job_memory_gb=0.01))),
        ("job_memory_gb string", _edit(base, lambda c: c.update(job_memory_gb="lots"))),
        # names
        *((f"experiment named {n!r}", _edit(base, rename(n))) for n in ("..", ".", "a/b", "a b", "", "x" * 300, "-x")),
        ("experiment named well", _edit(base, rename("fit_1d-b"))),
        *((f"variant named {n!r}", _edit(base, variants("base", n))) for n in ("..", ".", ".h", "a/b", "x" * 300)),
        ("variants named well", _edit(base, variants("base", "lr.small", "v_2"))),
        ("sweep over a mapping", _edit(base, lambda c: exp(c).update(sweep={"train.schedule": [{"name": "step"}]}))),
        ("sweep over lists", _edit(base, lambda c: exp(c).update(sweep={"task.frequencies": [[1.0], [2.0]]}))),
        ("sweep with a misspelt key", _edit(base, lambda c: exp(c).update(sweep={"model.widht": [8]}))),
        ("sweep of two widths", _edit(base, lambda c: exp(c).update(sweep={"model.width": [4, 8]}))),
        ("sweep of repeated values", _edit(base, lambda c: exp(c).update(sweep={"model.width": [8, 8]}))),
        ("sweep putting nan", _edit(base, lambda c: exp(c).update(sweep={"train.lr": [NAN]}))),
        # the analysis and audit sections: generic finiteness, the schema's types
        ("analysis nan", _edit(base, lambda c: c.update(analysis={"min_span": NAN}))),
        ("analysis float integer", _edit(base, lambda c: c.update(analysis={"window": 1.0}))),
        ("audit inf", _edit(base, lambda c: c.update(audit={"a2_min_aligned": INF}))),
        ("audit -inf", _edit(base, lambda c: c.update(audit={"a2_max_spearman": -INF}))),
        ("audit string", _edit(base, lambda c: c.update(audit={"min_seeds": "two"}))),
        # a schedule measuring the ends only
        ("log ends only", _set(base, (*fit, "log"), {"dense_every": 500, "dense_until": 0, "sparse_every": 500})),
        # structure
        ("unknown top-level key", _edit(base, lambda c: c.update(colour="blue"))),
        ("no experiments", _edit(base, lambda c: c.pop("experiments"))),
        ("empty experiments", _edit(base, lambda c: c.update(experiments={}))),
        ("no scale", _edit(base, lambda c: c.pop("scale"))),
        ("section missing", _edit(base, lambda c: exp(c).pop("rank"))),
        ("experiment disabled", _edit(base, lambda c: exp(c).update(enabled=False))),
        ("whole file a list", b"- fit1d\n- sweep1d\n"),
        ("whole file a number", b"42\n"),
        ("whole file empty", b""),
        ("whole file a comment", b"# nothing here\n"),
        ("whole file latin-1", "scale: sm\xe9all\n".encode("latin-1")),
        ("whole file broken YAML", b"scale: [small\nexperiments: {\n"),
        ("whole file tabs", b"scale:\tsmall\n\texperiments: x\n"),
    ]
    out += _yaml_mutations(TINY.read_text())
    out += _reliability_mutations(base)
    return out


MUTATIONS = mutations()


def write(tmp_path, label, content) -> Path:
    path = tmp_path / f"{hashlib.sha1(label.encode()).hexdigest()[:10]}.yaml"
    path.write_bytes(content if isinstance(content, bytes) else yaml.safe_dump(content).encode())
    return path


def check(path, capsys) -> str | None:
    """None if `staircase check-config` accepts the file; else its one error line."""
    code = cli.main(["check-config", str(path)])
    captured = capsys.readouterr()
    if code == 0:
        assert captured.out.strip() == f"{path}: ok" and captured.err == ""
        return None
    err = captured.err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("staircase: error: "), (code, captured.err)
    assert "Traceback" not in captured.err
    return err[0]


def train_first_variant(path, out, capsys) -> str:
    """Train the first variant of the first enabled experiment (all others are the base config's):
    'ran', or 'stopped' with one clean line before anything was written."""
    config = cli._load_config(str(path), [])
    experiments = cfgmod.enabled_experiments(config)
    if not experiments:
        return "nothing to train"
    name = experiments[0]
    variant = next(iter(cfgmod.variants(config, name)))
    argv = ["train", "--config", str(path), "--experiment", name, "--variant", variant]
    code = cli.main([*argv, "--out", str(out), "--checkpoint-dir", str(out.parent / "ckpt"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    if code == 0:
        assert (out / "metrics.parquet").exists() and not (out.parent / "ckpt").exists()
        return "ran"
    assert code == 2 and len(err) == 1 and err[0].startswith("staircase: error: "), err
    assert not out.exists() and not (out.parent / "ckpt").exists()
    return "stopped"


def test_every_mutation_is_rejected_cleanly_or_trains(tmp_path, capsys):
    assert len(MUTATIONS) >= 100 and len({label for label, _ in MUTATIONS}) == len(MUTATIONS)
    outcome, problems = {}, []
    for i, (label, content) in enumerate(MUTATIONS):
        path = write(tmp_path, label, content)
        try:
            error = check(path, capsys)
            if error is not None:
                outcome[label] = "rejected"
                continue
            outcome[label] = train_first_variant(path, tmp_path / f"run{i}" / "out", capsys)
        except Exception as err:  # noqa: BLE001  (collect every failing mutation, then report them all)
            problems.append(f"{label}: {type(err).__name__}: {' '.join(str(err).split())[:300]}")
    assert not problems, "\n".join(problems)
    counts = {kind: sum(1 for v in outcome.values() if v == kind) for kind in set(outcome.values())}
    print(f"\nfuzz: {len(MUTATIONS)} mutations: {counts}")
    # the classes of the issue are all refused
    for label in (
        "experiments.fit1d.train.lr: nan",
        "experiments.fit1d.train.lr: inf",
        "experiments.fit1d.model.width: float",
        "experiments.fit1d.model.width: huge",
        "experiments.fit1d.rank.eps.0: nan",
        "experiments.fit1d.rank.eps: repeated item",
        "variant named '..'",
        "experiment named '.'",
        "width 60000: memory",
        "points 5e6, width 500: memory",
        "depth 1e6",
        "sweep over a mapping",
        "whole file latin-1",
        "log ends only",
        "audit inf",
        "defaults experiments.defaults.model.width: float",
        "defaults experiments.defaults.log: unknown key",
        *RELIABILITY_LABELS,
    ):
        assert outcome[label] == "rejected", label
    assert counts.get("ran", 0) >= 10 and counts.get("rejected", 0) >= 100


# a sample through the real commands, beside an existing results/ folder
SAMPLE = [
    "yaml: alias bomb",
    "yaml: a template",
    "experiments.fit1d.train.lr: nan",
    "defaults experiments.defaults.model.width: float",
    "variant named '..'",
    "sweep over a mapping",
    "width 60000: memory",
    "whole file latin-1",
]


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("label", SAMPLE)
def test_a_sample_is_rejected_by_the_commands_in_one_line(tmp_path, label):
    content = dict(MUTATIONS)[label]
    path = write(tmp_path, label, content)
    work = tmp_path / "work"
    (work / "results/small/runs/fit1d/base").mkdir(parents=True)
    (work / "results/small/runs/fit1d/base/metrics.parquet").write_bytes(b"earlier results")
    before = _snapshot(work)
    res = subprocess.run(
        [sys.executable, "-m", "staircase", "check-config", str(path)], capture_output=True, text=True, cwd=work
    )
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("staircase: error: "), res.stderr
    if isinstance(content, bytes):  # Snakemake reads a --configfile itself; its own message is checked by hand
        return
    res = snakemake("--dry-run", "--cores", "1", "--configfile", str(path), cwd=work)
    out = res.stdout + res.stderr
    errors = [line for line in out.splitlines() if line.startswith("config error: ")]
    assert res.returncode != 0 and len(errors) == 1 and "Traceback" not in out, out
    assert lines[0].removeprefix("staircase: error: ") == errors[0].removeprefix("config error: ")
    assert _snapshot(work) == before


def test_the_base_config_and_a_mutation_that_is_fine_pass_snakemake(tmp_path):
    for label in ("variants named well", "experiments.fit1d.task.amplitudes.0: negated"):
        res = snakemake(
            "--dry-run",
            "--cores",
            "1",
            "--configfile",
            str(write(tmp_path, label, dict(MUTATIONS)[label])),
            cwd=tmp_path,
        )
        assert res.returncode == 0, res.stdout + res.stderr
