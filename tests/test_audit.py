"""The claims audit on runs written in the results format (staircase.claims.synthetic.write_run): for each
claim of paper A a case that must pass and one that must fail, self-checks that must give ERROR,
too little evidence that must give INCONCLUSIVE, the files and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from staircase.claims import audit, synthetic
from staircase.core.schedule import log_schedule
from staircase.records import manifest

REPO = Path(__file__).resolve().parents[1]
STEPS = log_schedule(3000, 10, 1000, 50)
U = STEPS / STEPS[-1]
REGULAR = -np.arange(40) * 0.5 - 1.0
BURSTS = synthetic.bursts(STEPS, [0.15, 0.45, 0.75], [2.5, 2.5, 2.5])
STEADY = 7.5 * U
SEEDS = (0, 1, 2)


def make_config(claims=("A1", "A2", "A3", "A5"), experiment="fit1d", **sweep):
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    exp = config["experiments"]["fit1d"]
    exp.update(claims=list(claims), seeds=list(SEEDS))
    if sweep:
        exp["sweep"] = sweep
    config["experiments"] = {experiment: exp}
    config.pop("rank_collapse", None)
    config.pop("alignment", None)
    config["audit"] = {"alpha": 0.05, "min_seeds": 2}
    return config


def run_files(
    results: Path,
    shift=BURSTS,
    coupled=True,
    bound_share=0.9,
    layers_rise=True,
    experiment="fit1d",
    variant="base",
    status=None,
    config=None,
):
    """A run whose last layer's spectrum moves by ``shift`` (bursts: a staircase; steady: not),
    whose loss falls with the rank's rises (``coupled``) or only shares its trend, whose eps-bound
    is above 0 at a share ``bound_share`` of the checkpoints and falls with the rank's rises
    (``coupled``), and whose hidden layers' ranks rise or fall with depth."""
    spectra, ranks, loss, layers, extra = {}, {}, {}, {}, {"error_sq": {}, "eps_bound": {}, "eps_bound_violation": {}}
    for seed in SEEDS:
        rng = np.random.default_rng([seed, zlib.crc32(variant.encode())])  # each cell its own data
        sp = synthetic.moving_spectra(shift, REGULAR, 0.05, 0.02, 0.5, rng)
        r = (sp > 1e-3).sum(axis=1).astype(float)
        progress = r - r[0]
        log_loss = -3 * U**0.5 + rng.normal(0, 0.005, len(U))
        if coupled:
            log_loss = 0.3 * log_loss - 0.2 * progress
        error = np.exp(log_loss) * 2
        bound = np.where(U < bound_share, error * 0.6, 0.0)
        if not coupled:  # an uninformative bound: a tenth of the squared error at most
            bound = np.where(U < bound_share, error * np.exp(-U) * 0.1, 0.0)
        spectra[seed], ranks[seed], loss[seed] = sp, r, np.exp(log_loss)
        extra["error_sq"][seed], extra["eps_bound"][seed] = error, bound
        extra["eps_bound_violation"][seed] = np.zeros(len(U), dtype=bool)
        step = 1 if layers_rise else -1
        layers[seed] = np.stack([r - 2 * step, r - step, r])
    return synthetic.write_run(
        results / "runs" / experiment / variant,
        STEPS,
        ranks,
        loss,
        experiment=experiment,
        variant=variant,
        layer_ranks=layers,
        spectra=spectra,
        extra_metrics=extra,
        status=status,
        width=60,
        config=config,
    )


def verdicts(config, results):
    frame = audit.evaluate(config, results)
    return dict(zip(audit.overall(frame)["claim"], audit.overall(frame)["verdict"])), frame


def rows(frame, claim, role="test"):
    return frame[(frame["claim"] == claim) & (frame["role"] == role)]


# ---- must pass / must fail ---------------------------------------------------------------------
def test_a_coupled_staircase_passes_a1_to_a3_and_a5(tmp_path):
    run_files(tmp_path)
    v, frame = verdicts(make_config(), tmp_path)
    assert v == {"A1": "PASS", "A2": "PASS", "A3": "PASS", "A5": "PASS"}
    a1 = rows(frame, "A1")
    assert (a1["p_value"].dropna() <= 0.05).all() and (a1["margin"] > 0).all()
    assert a1["null"].str.contains("one growth phase").all() and (a1["n"] == 3).all()


def test_a_steady_rise_with_a_trend_sharing_loss_fails_a1_to_a3(tmp_path):
    """The eps-rank still rises, the loss still falls as it rises (Spearman near -1) and the stair
    counter still finds a stair per level: none of it is evidence, and the verdicts say FAIL."""
    run_files(tmp_path, shift=STEADY, coupled=False, bound_share=0.3, layers_rise=False)
    v, frame = verdicts(make_config(), tmp_path)
    assert v == {"A1": "FAIL", "A2": "FAIL", "A3": "FAIL", "A5": "FAIL"}
    spearman = frame[frame["metric"].str.startswith("Spearman(loss")].iloc[0]
    stairs = frame[frame["metric"].str.startswith("detected stairs")].iloc[0]
    assert spearman["value"] < -0.9 and spearman["role"] == "description" and spearman["verdict"] == "INFO"
    assert stairs["value"] >= 10 and stairs["role"] == "description"
    a5 = rows(frame, "A5").iloc[0]
    assert "counterexamples" in a5["detail"] and "reversals" in a5["detail"]


def test_a3s_drops_at_rises_are_a_description_and_a_tiny_bound_is_not_informative(tmp_path):
    """The bound cannot rise where the rank rises (a direction is added): its drops there are
    described, not evidence. A bound above 0 everywhere but at 6 % of the squared error fails."""
    path = run_files(tmp_path)
    m = pd.read_parquet(path / "metrics.parquet")
    m["eps_bound"] = 0.06 * m["error_sq"]
    m.to_parquet(path / "metrics.parquet")
    manifest.seal(path)
    v, frame = verdicts(make_config(("A3",)), tmp_path)
    a3 = frame[frame["claim"] == "A3"]
    assert v["A3"] == "FAIL" and list(a3[a3["role"] == "test"]["value"]) == [0.0]
    drops = a3[a3["metric"].str.contains("drop rate of the square root")].iloc[0]
    assert drops["role"] == "description" and drops["verdict"] == "INFO"
    positive = a3[a3["metric"].str.startswith("share of checkpoints where the bound is above 0")].iloc[0]
    assert positive["role"] == "description" and positive["value"] == 1.0


def test_cells_are_judged_apart_and_one_cell_never_carries_another(tmp_path):
    """Two variants: a staircase and a steady rise. Pooled, the staircase's seeds would carry the
    Fisher p; per cell, the steady cell fails A1 and so does the experiment."""
    config = make_config(("A1", "A2"), **{"model.activation": ["tanh", "relu"]})
    run_files(tmp_path, BURSTS, variant="activation-tanh")
    run_files(tmp_path, STEADY, variant="activation-relu")
    v, frame = verdicts(config, tmp_path)
    a1 = rows(frame, "A1")
    assert v["A1"] == "FAIL"
    assert set(a1["metric"].str.extract(r"^cell ([\w-]+):")[0]) == {"activation-tanh", "activation-relu"}
    by_cell = dict(zip(a1["metric"].str.split(":").str[0], a1["verdict"]))
    assert by_cell["cell activation-relu"] == "FAIL" and (a1["n"] == 3).all()


def test_a_bound_violation_is_an_error_not_a_failure(tmp_path):
    path = run_files(tmp_path)
    m = pd.read_parquet(path / "metrics.parquet")
    m.loc[5, "eps_bound_violation"] = True
    m.to_parquet(path / "metrics.parquet")
    manifest.seal(path)  # edited on purpose
    v, frame = verdicts(make_config(), tmp_path)
    assert v["A3"] == "ERROR"
    check = rows(frame, "A3", "self-check").iloc[0]
    assert check["value"] == 1 and check["verdict"] == "ERROR"
    assert "ERROR" in audit.summary_line(frame) and "A3/fit1d" in audit.summary_line(frame)


def test_runs_without_the_eps_bound_are_inconclusive_for_a3(tmp_path):
    path = run_files(tmp_path)
    m = pd.read_parquet(path / "metrics.parquet").drop(columns=["eps_bound", "error_sq", "eps_bound_violation"])
    m.to_parquet(path / "metrics.parquet")
    manifest.seal(path)  # edited on purpose
    v, frame = verdicts(make_config(), tmp_path)
    assert v["A3"] == "INCONCLUSIVE" and "re-run" in rows(frame, "A3", "guard").iloc[0]["detail"]


def test_too_few_healthy_seeds_is_inconclusive_and_says_why(tmp_path):
    path = run_files(tmp_path, status={1: "diverged at step 400", 2: "diverged at step 600"})
    m = pd.read_parquet(path / "metrics.parquet")
    m.loc[m.seed > 0, ["loss", "eps_rank"]] = np.nan
    m.to_parquet(path / "metrics.parquet")
    manifest.seal(path)  # edited on purpose
    v, frame = verdicts(make_config(), tmp_path)
    assert v["A1"] == v["A2"] == "INCONCLUSIVE"
    detail = rows(frame, "A2").iloc[0]["detail"]
    assert "diverged" in detail and "only 1 healthy seed(s)" in detail


def test_missing_results_inconclusive(tmp_path):
    v, _ = verdicts(make_config(), tmp_path)
    assert set(v.values()) == {"INCONCLUSIVE"}


def test_a4_is_the_share_of_cells_that_pass_a1(tmp_path):
    config = make_config(("A4",), "sweep", **{"model.activation": ["tanh", "sin", "relu", "gelu"]})
    for k, activation in enumerate(["tanh", "sin", "relu", "gelu"]):
        run_files(tmp_path, BURSTS if k < 3 else STEADY, experiment="sweep", variant=f"activation-{activation}")
    v, frame = verdicts(config, tmp_path)
    row = rows(frame, "A4").iloc[0]
    assert v["A4"] == "PASS" and row["value"] == 0.75 and row["n"] == 4
    assert "do not: activation-gelu" in row["detail"] and row["p_value"] < 0.01  # 3 of 4 at alpha 0.05
    for activation in ["tanh", "sin"]:
        run_files(tmp_path, STEADY, experiment="sweep", variant=f"activation-{activation}")
    v, frame = verdicts(config, tmp_path)
    assert v["A4"] == "FAIL" and rows(frame, "A4").iloc[0]["value"] == 0.25


def _regime_config():
    """A regime map (tagged A1-regime) of 2 optimisers x 2 initialisation scales, and a sweep (A4)."""
    config = make_config(("A4",), "sweep", **{"model.activation": ["tanh", "sin"]})
    regime = make_config(("A1-regime",), "regime", **{"model.init_gain": [1.0, 0.1]})["experiments"]["regime"]
    regime["model"]["init_gain"] = 1.0
    regime["variants"] = {"gd": {"train": {"optimizer": "sgd", "lr": 0.1}}, "adam": {}}
    config["experiments"]["regime"] = regime
    return config


def _regime_runs(results, staircases):
    """Runs of _regime_config whose cells move in bursts (a staircase) where ``staircases`` says so."""
    cells = {}
    for optimiser, train in (("gd", {"optimizer": "sgd", "lr": 0.1}), ("adam", {"optimizer": "adam", "lr": 5e-3})):
        for gain in (1.0, 0.1):
            variant = f"{optimiser}_init_gain-{gain}"
            config = {"train": dict(train, steps=3000), "model": {"depth": 3, "width": 60, "init_gain": gain}}
            shift = BURSTS if (optimiser, gain) in staircases else STEADY
            run_files(results, shift, experiment="regime", variant=variant, config=config)
            cells[variant] = shift is BURSTS
    for activation in ("tanh", "sin"):
        run_files(
            results, BURSTS if "sweep" in staircases else STEADY, experiment="sweep", variant=f"activation-{activation}"
        )
    return cells


def test_the_regime_map_names_its_cells_and_tests_their_number(tmp_path):
    config = _regime_config()
    cells = _regime_runs(tmp_path, {("adam", 1.0), ("adam", 0.1), ("gd", 1.0)})
    records = []
    frame = audit.evaluate(config, tmp_path, records)
    v = dict(
        zip(zip(audit.overall(frame)["claim"], audit.overall(frame)["experiment"]), audit.overall(frame)["verdict"])
    )
    test = rows(frame, "A1-regime").iloc[0]
    # 3 of 4 cells pass A1: far more than the 0.2 expected if none had a staircase
    assert v[("A1-regime", "regime")] == "PASS" and test["value"] == 0.75 and test["n"] == 4 and test["p_value"] < 0.001
    assert "do not: gd_init_gain-0.1" in test["detail"] and "pass A1: " in test["detail"]
    described = rows(frame, "A1-regime", "description")
    assert len(described) == 4 and (described["verdict"] == "INFO").all()
    for variant, staircase in cells.items():
        row = described[described["metric"].str.startswith(f"cell {variant} ")].iloc[0]
        assert row["detail"].startswith("passes A1" if staircase else "does not pass A1")
        assert ("init x0.1" in row["metric"]) == variant.endswith("0.1")
    assert "gd, lr 0.1, init x1" in " ".join(described["metric"])
    # A4 over the sweep and the map together: 3 of 6 cells, named with their experiment
    across = frame[frame["experiment"] == "sweep+regime"].iloc[0]
    assert across["claim"] == "A4" and across["value"] == 0.5 and across["n"] == 6
    assert "per experiment: sweep 0/2, regime 3/4" in across["detail"] and "regime/gd_init_gain-0.1" in across["detail"]
    assert v[("A4", "sweep+regime")] == "FAIL" and v[("A4", "sweep")] == "FAIL"  # 0.5 < a4_min_fraction 0.75
    seeds = pd.DataFrame(records)
    assert set(seeds.loc[seeds["claim"] == "A1-regime", "seed"]) == {-1, *SEEDS}  # per seed and per cell
    # the notebooks' table is the same computation
    table = audit.regime_table(audit.config_runs(config, tmp_path, "regime"), config["analysis"], config["audit"])
    assert dict(zip(table["variant"], table["a1_pass"])) == cells
    assert set(table["method"]) == {"gd", "adam"} and set(table["init_gain"]) == {1.0, 0.1}


def test_a_map_without_staircases_fails_and_a4_over_everything_passes_when_all_do(tmp_path):
    config = _regime_config()
    _regime_runs(tmp_path, set())
    v, frame = verdicts(config, tmp_path)
    assert v["A1-regime"] == "FAIL" and rows(frame, "A1-regime").iloc[0]["value"] == 0
    every = {("gd", 1.0), ("gd", 0.1), ("adam", 1.0), ("adam", 0.1), "sweep"}
    _regime_runs(tmp_path, every)
    frame = audit.evaluate(config, tmp_path)
    across = frame[frame["experiment"] == "sweep+regime"].iloc[0]
    assert across["verdict"] == "PASS" and across["value"] == 1.0
    assert audit.figure_links(frame, "../figures") == [
        "- sweep: [universality_sweep](../figures/universality_sweep.png)",
        "- regime: [regime_map](../figures/regime_map.png)",  # none for the row over both
    ]


def test_a_single_hidden_layer_is_not_tested_for_a5(tmp_path):
    path = run_files(tmp_path)
    ranks = pd.read_parquet(path / "ranks.parquet")
    ranks[ranks["layer"] == 2].assign(layer=0).to_parquet(path / "ranks.parquet")
    manifest.seal(path)  # edited on purpose
    v, frame = verdicts(make_config(("A5",)), tmp_path)
    assert v["A5"] == "INCONCLUSIVE" and "1 hidden layer" in rows(frame, "A5", "guard").iloc[0]["detail"]


# ---- files, provenance, command line -----------------------------------------------------------
def test_files_columns_and_mixed_code_versions(tmp_path):
    run_files(tmp_path)
    config = make_config()
    frame = audit.run_audit(config, tmp_path, tmp_path / "audit")
    md = (tmp_path / "audit/claims.md").read_text()
    assert "not all produced by one clean commit" not in md and "## Evidence" in md
    csv = pd.read_csv(tmp_path / "audit/claims.csv")
    documented = {"claim", "experiment", "metric", "role", "value", "verdict", "threshold", "margin", "p_value"}
    assert documented | {"null", "spread", "n", "detail", "runs"} == set(csv.columns) and len(csv) == len(frame)
    seeds = pd.read_csv(tmp_path / "audit/seeds.csv")
    assert set(seeds["claim"]) == {"A1", "A2", "A3", "A5"} and (seeds[seeds.claim == "A1"]["p_value"] <= 0.05).all()
    table = (tmp_path / "audit/results_table.md").read_text()
    assert table.startswith("| experiment | A1 | A2 | A3 | A5 |") and "PASS (p=" in table
    info = json.loads((tmp_path / "runs/fit1d/base/run.json").read_text())
    info["git_dirty"] = True
    (tmp_path / "runs/fit1d/base/run.json").write_text(json.dumps(info))
    manifest.seal(tmp_path / "runs/fit1d/base")  # edited on purpose
    audit.run_audit(config, tmp_path, tmp_path / "audit")
    assert "not all produced by one clean commit" in (tmp_path / "audit/claims.md").read_text()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "staircase", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def passing_results(tmp_path_factory):
    path = tmp_path_factory.mktemp("pass")
    run_files(path)
    return path


def test_cli_strict_exits_nonzero_unless_every_claim_passes(passing_results, tmp_path):
    config = json.dumps(make_config())
    ok = cli("audit", "--config-json", config, "--results", passing_results, "--out", tmp_path / "a", "--strict")
    assert ok.returncode == 0 and "4 passed" in ok.stdout
    run_files(tmp_path, shift=STEADY, coupled=False)
    loose = cli("audit", "--config-json", config, "--results", tmp_path, "--out", tmp_path / "a")
    assert loose.returncode == 0 and "failed" in loose.stdout
    strict = cli("audit", "--config-json", config, "--results", tmp_path, "--out", tmp_path / "a", "--strict")
    assert strict.returncode == 1


def test_cli_with_no_results_says_so_in_one_line(tmp_path):
    for strict in ([], ["--strict"]):
        out = cli("audit", "--config-json", json.dumps(make_config()), "--results", tmp_path / "typo", *strict)
        assert out.returncode == 2
        assert out.stderr.count("\n") == 1 and "no results under" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "typo").exists()


def test_docs_claims_table_is_the_registry(tmp_path):
    """The claims table of docs/auditing.md is generated from the registry (staircase registry)."""
    table = cli("registry").stdout
    page = (REPO / "docs/auditing.md").read_text()
    assert table and table in page


def test_readme_results_table_comes_from_the_reference_audit():
    """The README's results table is `staircase registry --results-table` of the committed audit of
    the reference run (docs/results/claims.csv), not typed by hand."""
    table = cli("registry", "--results-table", REPO / "docs/results/claims.csv").stdout
    assert table and table in (REPO / "README.md").read_text()
