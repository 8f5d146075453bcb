"""A6 and A7 (issue 23 item 6): every correlation has a permutation p, with its false-positive
rate measured exactly; "cuts the staircase" is judged with A1's decision, not stair counts; A7's
mechanism can FAIL; an untested "speeds training" leaves A7 INCONCLUSIVE."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from staircase.claims import comparison as cmp


def _rule_passes(x, y, alpha=0.05, min_rho=0.5) -> bool:
    rho, p = cmp.spearman_permutation(np.asarray(x, float), np.asarray(y, float))
    return rho >= min_rho and p <= alpha


@pytest.mark.parametrize("n", [4, 5])
def test_the_spearman_rule_holds_its_level_exactly_under_exchangeable_speedups(n):
    """Every order of n methods' loss speed-ups (the null): the rule (Spearman >= 0.5 and p <= 0.05)
    passes at most alpha of them; the Spearman alone passed far more."""
    x = np.arange(n, dtype=float)
    orders = list(itertools.permutations(range(n)))
    rule = np.mean([_rule_passes(x, y) for y in orders])
    spearman_alone = np.mean([stats.spearmanr(x, y).statistic >= 0.5 for y in orders])
    assert rule <= 0.05
    assert spearman_alone > 0.15  # what the old threshold-only row let through


def test_a_perfect_order_of_many_methods_passes_and_a_weak_one_fails():
    x = np.arange(8, dtype=float)
    assert _rule_passes(x, x + 0.1)  # must pass: p = 1/8!
    assert not _rule_passes(x[:4], np.array([1.0, 0.0, 2.0, 3.0]))  # rho 0.8 on 4 methods: p 0.167


def _summary(gain_first=5.0) -> pd.DataFrame:
    """A summary table (:func:`staircase.claims.comparison.summary_table`'s columns used by the
    verdicts) of a baseline, two acceleration methods and one pre-training."""
    rows = []
    for variant, group, rank_s, loss_s in (("base", "baseline", 1, 1), ("fast", "A6", 3, 3), ("same", "A6", 1, 1)):
        fewer = -1.0 if variant == "fast" else 0.0
        rows.append(dict(variant=variant, group=group, baseline="base", time_speedup_rank=rank_s,
                         time_speedup_loss=loss_s, stairs_minus_baseline=fewer))  # fmt: skip
    pre = dict(variant="pre", group="A7", baseline="base", time_speedup_rank=2.0, time_speedup_loss=2.0)
    pre |= dict(init_rank_l0=3 + gain_first, init_rank_l1=8, init_rank_before_pretrain_l0=3)
    pre |= dict(init_rank_before_pretrain_l1=5, key_loss_threshold=0.01, key_rank_threshold=9)
    pre |= dict(pretrain_time=0.1, error_ratio=0.8, final_rel_l2=0.08, seeds=3)
    rows.append(pre)
    frame = pd.DataFrame(rows)
    for col, value in (("init_rank_l0", 3), ("init_rank_l1", 5), ("final_rel_l2", 0.1), ("seeds", 3)):
        frame.loc[frame["variant"] != "pre", col] = value
    return frame


COMPARISON = {"baseline": "base", "loss_thresholds": [0.01], "rank_thresholds": [9], "min_speedup": 1.5}


def _a6_cut_row(a1_pass):
    rows = cmp.verdicts(_summary(), COMPARISON, a1_pass=a1_pass)
    return rows[rows["metric"].str.contains("cut the staircase")].iloc[0]


def test_cutting_the_staircase_is_judged_by_a1_not_by_stair_counts():
    # must pass: A1 passes on the baseline and on neither method... one cut of two at a6_min_fraction 0.5
    row = _a6_cut_row({"base": True, "fast": False, "same": True})
    assert row["role"] == "test" and row["value"] == 0.5 and row["verdict"] == "PASS"
    # must fail: A1 passes on both methods as on the baseline (fewer stair counts do not matter)
    row = _a6_cut_row({"base": True, "fast": True, "same": True})
    assert row["value"] == 0.0 and row["verdict"] == "FAIL"
    # nothing to cut: the baseline has no staircase
    row = _a6_cut_row({"base": False, "fast": False, "same": False})
    assert row["verdict"] == "INCONCLUSIVE" and "no staircase to cut" in row["detail"]


def test_a7s_mechanism_can_fail():
    rows = cmp.verdicts(_summary(gain_first=0.0), COMPARISON)
    mechanism = rows[rows["metric"].str.contains("first-layer")].iloc[0]
    assert mechanism["role"] == "test" and mechanism["verdict"] == "FAIL"
