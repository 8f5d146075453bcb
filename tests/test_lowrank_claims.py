"""The verdicts of claims B1-B3 and C1-C3 (staircase.claims.lowrank) can fail: for each claim a
study directory that must pass and one that must fail, written in the format the studies write
(claims_inputs.parquet, layers.parquet, pairs.parquet, run.json); a violated identity is an ERROR;
an untrained net cannot pass C3; and the false-positive rates of every test under its null model
(staircase.claims.lowrank_calibration) are at most alpha."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from staircase.claims import lowrank as claims
from staircase.claims import lowrank_calibration as calibration
from staircase.claims import registry, verdicts
from staircase.records import manifest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("single_blas_thread")
T = claims.thresholds({})  # the schema's defaults


# ---- paper B: study directories -----------------------------------------------------------------


def write_collapse(
    path: Path,
    dist,
    weight_decay=(0.0, 5e-3, 1e-2, 2e-2, 3e-2),
    noise=(np.nan,),
    seeds=(0, 1),
    stationarity=0.01,
    bound=lambda lam, noise, layer, fro: 0.5 * fro,
    violation_at=None,
) -> Path:
    """A paper-B run directory: 3 hidden layers of width 16 and an output layer to K = 4 classes;
    ``dist(lam, noise, layer, seed)`` gives dist_K/||W||_F at the end (0.6 at step 0), ``bound`` the
    bound's right-hand side; ``violation_at`` = (cell, layer) flags one bound violation at step 0."""
    classes, fro = 4, 2.0
    final, init = [], []
    cell = 0
    for lam in weight_decay:
        for nz in noise:
            for seed in seeds:
                for layer in (1, 2, 3, 4):
                    out = layer == 4
                    d = 0.0 if out else float(dist(lam, nz, layer, seed))
                    rhs = np.nan if lam == 0 else float(bound(lam, nz, layer, fro))
                    common = dict(
                        cell=cell, weight_decay=lam, noise=nz, seed=seed, layer=layer, is_output=out,
                        fan_in=8 if layer == 1 else 16, fan_out=classes if out else 16, fro=fro, sigma1=1.0,
                        numerical_rank=16.0, within_class_rel=0.3 if layer == 1 else 0.05,
                    )  # fmt: skip
                    start = np.nan if lam == 0 else 10 * fro
                    init.append(
                        {**common, "step": 0, "dist_k": 0.6 * fro * (not out), "dist_k_rel": 0.6 * (not out),
                         "bound_rhs": start, "bound_rhs_tight": 0.5 * start,
                         "bound_violation": violation_at == (cell, layer)}
                    )  # fmt: skip
                    final.append(
                        {**common, "step": 100, "dist_k": d * fro, "dist_k_rel": d, "bound_rhs": rhs,
                         "bound_rhs_tight": 0.5 * rhs, "bound_grad": 0.1 * rhs, "bound_violation": False}
                    )  # fmt: skip
                cell += 1
    layers = pd.DataFrame(init + final)
    ci = pd.DataFrame(final)
    ci["bound_violations_all_steps"] = [
        int(violation_at == (c, l)) for c, l in zip(ci["cell"], ci["layer"])
    ]  # fmt: skip
    ci = ci.assign(
        loss=0.05, train_accuracy=1.0, classes=classes, steps=100, diverged=False,
        stationarity_avg_max=np.where(ci["weight_decay"] > 0, stationarity, np.nan),
    )  # fmt: skip
    path.mkdir(parents=True, exist_ok=True)
    ci.to_parquet(path / "claims_inputs.parquet", index=False)
    layers.to_parquet(path / "layers.parquet", index=False)
    study_json(path, "rank_collapse", seeds, classes=classes)
    return path


def study_json(path: Path, family: str, seeds, **more) -> None:
    """run.json as a study writes it, and the folder sealed (manifest.json) as the job seals it."""
    info = {"family": family, "study": path.name, "config": {"study": path.name}, "seeds": list(seeds), **more}
    (path / "run.json").write_text(json.dumps(info))
    manifest.seal(path, names=[p.name for p in path.iterdir() if p.name != manifest.NAME])


def verdict_of(rows, claim) -> str:
    frame = verdicts.to_frame([r for r in rows if r.claim == claim])
    return verdicts.overall(frame)["verdict"].item()


def b_rows(path, claim):
    return claims.run_rows(path, "rank_collapse", path.name, [claim], T)


def decreasing(lam, noise, layer, seed):
    """Weight decay pulls every hidden layer towards rank K; deeper layers below b_rank_tol."""
    return (0.5 if layer == 1 else 0.2) / (1 + 400 * lam) + 1e-3 * seed


def flat(lam, noise, layer, seed):
    """No relation to lambda: a value that depends on the seed and layer only (and a little noise)."""
    return 0.05 + 0.01 * ((7 * seed + 3 * layer + int(lam * 1e4)) % 5)


def test_b1_passes_when_weight_decay_lowers_the_rank(tmp_path):
    rows = b_rows(write_collapse(tmp_path / "pass", decreasing), "B1")
    assert verdict_of(rows, "B1") == "PASS"
    spearman = [r for r in rows if "Spearman" in r.metric]
    assert len(spearman) == 3 and all(r.role == "test" and r.p_value <= T["alpha"] for r in spearman)
    assert all("lambda labels permuted over the 8 valid cells" in r.null for r in spearman)
    assert all(r.margin > 0 for r in rows if r.role in ("test", "guard"))
    deep = [r for r in rows if "largest valid lambda" in r.metric]
    assert len(deep) == 2 and all("at initialisation 0.6" in r.null for r in deep)


def test_b1_fails_without_a_trend_and_when_deeper_layers_stay_far(tmp_path):
    rows = b_rows(write_collapse(tmp_path / "flat", flat), "B1")
    assert verdict_of(rows, "B1") == "FAIL"
    assert any(r.verdict == "FAIL" and "Spearman" in r.metric and r.p_value > T["alpha"] for r in rows)
    # a perfect trend whose deeper layers stay above b_rank_tol fails on the distance row
    far = b_rows(write_collapse(tmp_path / "far", lambda lam, nz, layer, s: 0.6 / (1 + 10 * lam) + 1e-3 * s), "B1")
    assert verdict_of(far, "B1") == "FAIL"
    assert {r.verdict for r in far if "Spearman" in r.metric} == {"PASS"}
    assert {r.verdict for r in far if "largest valid lambda" in r.metric} == {"FAIL"}


def test_b1_guards_make_it_inconclusive(tmp_path):
    rows = b_rows(write_collapse(tmp_path / "moving", decreasing, stationarity=0.5), "B1")
    assert verdict_of(rows, "B1") == "INCONCLUSIVE"
    guards = [r for r in rows if r.role == "guard"]
    assert [g.verdict for g in guards] == ["PASS", "PASS", "INCONCLUSIVE"]  # the stationarity guard
    assert "not stationary: weight_decay 0.005, 0.01, 0.02, 0.03" in guards[-1].detail


def test_b2_passes_and_fails(tmp_path):
    noise = (0.05, 0.1, 0.2, 0.4, 0.8)
    grows = write_collapse(
        tmp_path / "grows", lambda lam, nz, layer, s: (nz if layer == 1 else 0.01) * (1 + 0.1 * s), (1e-2,), noise
    )
    rows = b_rows(grows, "B2")
    assert verdict_of(rows, "B2") == "PASS"
    (rho,) = [r for r in rows if "Spearman" in r.metric]
    assert rho.value > 0.9 and rho.p_value <= T["alpha"] and "noise labels permuted over the 10 valid cells" in rho.null
    shrinks = write_collapse(tmp_path / "shrinks", lambda lam, nz, layer, s: 0.01 / nz + 1e-3 * s, (1e-2,), noise)
    assert verdict_of(b_rows(shrinks, "B2"), "B2") == "FAIL"
    # without a noise sweep there is no evidence either way
    assert verdict_of(b_rows(write_collapse(tmp_path / "digits", decreasing), "B2"), "B2") == "INCONCLUSIVE"


def test_b3_non_vacuity_passes_fails_and_a_violation_is_an_error(tmp_path):
    informative = b_rows(write_collapse(tmp_path / "below", decreasing), "B3")
    assert verdict_of(informative, "B3") == "PASS"
    assert {r.role for r in informative} == {"guard", "self-check", "test", "description"}
    vacuous = b_rows(write_collapse(tmp_path / "above", decreasing, bound=lambda *a: 3 * a[-1]), "B3")
    assert verdict_of(vacuous, "B3") == "FAIL"
    (test,) = [r for r in vacuous if r.role == "test"]
    assert test.value == 0 and test.margin == pytest.approx(-T["b3_min_nonvacuous"])
    # one violated bound at one early checkpoint: a bug, whatever the test says
    bug = b_rows(write_collapse(tmp_path / "bug", decreasing, violation_at=(3, 2)), "B3")
    assert verdict_of(bug, "B3") == "ERROR"
    (check,) = [r for r in bug if r.role == "self-check" and "bound violations" in r.metric]
    assert check.value == 1 and check.n == 8 * 4 * 2  # cells with lambda > 0 x layers x checkpoints


def test_missing_results_are_inconclusive(tmp_path):
    rows = claims.run_rows(tmp_path / "nothing", "rank_collapse", "nothing", ["B1", "B3"], T)
    assert [verdict_of(rows, c) for c in ("B1", "B3")] == ["INCONCLUSIVE", "INCONCLUSIVE"]


# ---- paper C: study directories -----------------------------------------------------------------


def write_alignment(
    path: Path, sigma=0.999, align=0.9999, drift_linear=1e-4, drift_relu_diag=1e-4, drift_relu_full=0.3, growth=3.0
) -> Path:
    """A paper-C run directory: 2 ReLU layers then 3 linear layers (the last the output row vector),
    3 seeds; the values at the end of training as given (step 0: a random net), the weights' norms
    multiplied by ``growth``, the drifts the maxima over training."""
    seeds, kinds = (0, 1, 2), ["relu", "relu", "linear", "linear", "linear"]
    pair_kinds = [("relu", "diagonal"), ("relu", "diagonal"), ("linear", "full"), ("linear", "full")]
    layers, pairs, ci = [], [], []
    for seed in seeds:
        for step, last in ((0, False), (50, False), (100, True)):
            for layer, kind in enumerate(kinds, start=1):
                out = layer == 5
                ratio = 1.0 if out else (sigma if kind == "linear" else 0.7) if last else 0.4
                fro = 2.0 * (growth if last else 1.0)
                layers.append(dict(seed=seed, step=step, layer=layer, kind=kind, trivially_rank1=out, fro=fro,
                                   sigma1=ratio * fro, sigma1_ratio=ratio))  # fmt: skip
                if last:
                    ci.append(("C1", seed, f"layer {layer}", kind, "", out, "sigma1_ratio", ratio))
            for k, (kind, expected) in enumerate(pair_kinds, start=1):
                a = (align if kind == "linear" else 0.95) if last else 0.1
                full = (drift_linear if kind == "linear" else drift_relu_full) * (step / 100)
                diag = (drift_linear if kind == "linear" else drift_relu_diag) * (step / 100)
                pairs.append(dict(seed=seed, step=step, pair=k, layers=f"{k}-{k + 1}", kind=kind, expected=expected,
                                  alignment=a, drift_full=full, drift_diag=diag, scale=4.0))  # fmt: skip
                if last:
                    item = f"pair {k}-{k + 1}"
                    ci += [("C2", seed, item, kind, expected, False, "alignment", a),
                           ("C3", seed, item, kind, expected, False, "drift_full", full),
                           ("C3", seed, item, kind, expected, False, "drift_diag", diag)]  # fmt: skip
    cols = ["claim", "seed", "item", "kind", "expected", "trivially_rank1", "metric", "value"]
    path.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(ci, columns=cols).to_parquet(path / "claims_inputs.parquet", index=False)
    pd.DataFrame(layers).to_parquet(path / "layers.parquet", index=False)
    pd.DataFrame(pairs).to_parquet(path / "pairs.parquet", index=False)
    status = {str(s): "ok" for s in seeds}
    study_json(path, "alignment", seeds, status=status)
    return path


def c_rows(path, claims_=("C1", "C2", "C3")):
    return claims.run_rows(path, "alignment", path.name, list(claims_), T)


def test_c_claims_pass_on_a_rank_one_aligned_conserving_net(tmp_path):
    rows = c_rows(write_alignment(tmp_path / "good"))
    assert [verdict_of(rows, c) for c in ("C1", "C2", "C3")] == ["PASS"] * 3
    c1 = [r for r in rows if r.claim == "C1" and r.role == "test"]
    assert [r.metric.split(" (")[0] for r in c1] == ["layer 3", "layer 4"]  # not the output row vector
    assert all("sigma_1/||W||_F at initialisation 0.4" in r.null for r in c1)
    assert all("alignment at initialisation 0.1" in r.null for r in rows if r.claim == "C2" and r.role == "test")
    assert {r.role for r in rows if r.claim == "C3"} == {"guard", "test", "description"}


@pytest.mark.parametrize(
    "change, claim",
    [
        (dict(sigma=0.9), "C1"),
        (dict(align=0.5), "C2"),
        (dict(drift_linear=0.05), "C3"),
        (dict(drift_relu_diag=0.05), "C3"),
    ],
)
def test_c_claims_fail(tmp_path, change, claim):
    rows = c_rows(write_alignment(tmp_path / "bad", **change), [claim])
    assert verdict_of(rows, claim) == "FAIL"


def test_c3_cannot_pass_for_a_net_that_did_not_train(tmp_path):
    """An untrained net conserves everything (drift 0): the guards make C3 INCONCLUSIVE."""
    still = write_alignment(tmp_path / "still", drift_linear=0.0, drift_relu_diag=0.0, drift_relu_full=0.0, growth=1.0)
    rows = c_rows(still, ["C3"])
    assert verdict_of(rows, "C3") == "INCONCLUSIVE"
    assert [r.verdict for r in rows if r.role == "guard"] == ["INCONCLUSIVE", "INCONCLUSIVE"]
    assert {r.verdict for r in rows if r.role == "test"} == {"PASS"}  # the tests alone would have passed


def test_c_claims_need_healthy_seeds(tmp_path):
    path = write_alignment(tmp_path / "diverged")
    ci = pd.read_parquet(path / "claims_inputs.parquet")
    ci.loc[ci["seed"] > 0, "value"] = np.nan
    ci.to_parquet(path / "claims_inputs.parquet", index=False)
    info = json.loads((path / "run.json").read_text())
    info["status"].update({"1": "diverged at step 7", "2": "diverged at step 9"})
    (path / "run.json").write_text(json.dumps(info))
    # edited on purpose: resealed
    manifest.seal(path, names=["claims_inputs.parquet", "layers.parquet", "pairs.parquet", "run.json"])
    rows = c_rows(path, ["C1"])
    assert verdict_of(rows, "C1") == "INCONCLUSIVE"
    assert "seed 1 diverged at step 7" in rows[0].detail


# ---- thresholds, registry -----------------------------------------------------------------------


def test_thresholds_come_from_the_schema_and_the_config():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    audit = schema["properties"]["audit"]["properties"]
    keys = claims.threshold_keys()
    assert {"alpha", "b3_min_nonvacuous", "c3_max_drift", "min_seeds"} <= set(keys)
    assert all("default" in audit[k] for k in keys)
    assert claims.thresholds({}) == {k: audit[k]["default"] for k in keys}
    assert claims.thresholds({"audit": {"alpha": 0.01}})["alpha"] == 0.01
    for cid in ("B1", "B2", "B3", "C1", "C2", "C3"):
        assert registry.claims()[cid]["null_model"]


# ---- false-positive rates -----------------------------------------------------------------------


def test_spearman_rules_hold_their_level():
    """B1's and B2's rule (Spearman beyond its threshold and one-sided permutation p <= alpha) at the
    default grids: over every order of the distances (8 valid cells, as the default run has) or
    200000 random ones (12 and 10 cells), under any continuous i.i.d. null; and on an ensemble of
    200 draws where each seed's cells share an offset."""
    rates = [
        calibration.b_spearman_orders("B1", 4, 2),
        calibration.b_spearman_orders("B1", 6, 2, orders=200_000),
        calibration.b_spearman_orders("B2", 5, 2, orders=200_000),
        calibration.b_spearman("B1", 6, 2, draws=200, seed_effect=2.0),
        calibration.b_spearman("B2", 5, 2, draws=200, seed_effect=2.0),
    ]
    for r in rates:
        assert r.draws >= 200 and r.rate <= T["alpha"], r
    assert rates[0].draws == math.factorial(8)


def test_threshold_tests_never_pass_under_their_nulls():
    rates = [
        calibration.b_rank_random((32, 32), 10, draws=500),
        calibration.b_rank_random((32, 32), 4, draws=500, kind="gaussian"),
        calibration.b3_random_points(points=100, weight_decay=(1e-2,), draws=200),
        calibration.c1_random((20, 20), draws=500),
        calibration.c1_random((20, 20), draws=500, kind="gaussian"),
        calibration.c2_random(20, draws=500),
        # seeds=1: P(median of 3 passes) <= P(one passes) when the latter is below 1/2
        calibration.c3_random_walk(((20, 20), (20, 20)), "full", seeds=1, draws=200),
        calibration.c3_random_walk(((20, 64), (20, 20)), "diag", seeds=1, draws=200),
        calibration.c3_rescaling(draws=500),
    ]
    for r in rates:
        assert r.draws >= 200 and r.rate <= T["alpha"], r
    # the worst case a random walk misses: a pure rescaling passes the drift rows alone...
    assert calibration.c3_rescaling(draws=500, guards=False).rate == 1.0
    # ...and it is the second guard (the non-conserved pairs must drift) that stops it (above)
