"""One row type and one comparison for every claim of the audit (papers A, B and C).

A claim is judged by rows, one per statistic, each with a *role*:

* ``test`` - evidence: a statistic compared with a threshold, or a p-value against a stated null
  model. Its verdict is PASS or FAIL, or INCONCLUSIVE when it cannot be computed (too few healthy
  seeds, nothing to measure). Only tests decide whether a claim holds.
* ``guard`` - a precondition of the evidence (enough valid cells, a trend that can be measured).
  When it does not hold the claim is INCONCLUSIVE, never PASS or FAIL.
* ``self-check`` - an identity that holds by algebra (a bound that cannot be violated). It is
  not evidence for the claim: a violation is a bug of this code, reported as ERROR.
* ``description`` - a number reported beside the evidence (a correlation, a tightness); its
  verdict is INFO and it never moves the claim's verdict.

Each row carries the null model it was judged against (``null``, in words, with the null's value
where one was simulated), the ``p_value`` where the test has one, and the ``margin``: how far the
value lies past its threshold, in the statistic's own units, positive when the row passes (for a
p-value test: alpha - p). ``<root>/audit/claims.csv`` is a table of these rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

PASS, FAIL, INCONCLUSIVE, ERROR, INFO = "PASS", "FAIL", "INCONCLUSIVE", "ERROR", "INFO"
ROLES = ("test", "guard", "self-check", "description")


@dataclass
class Row:
    claim: str
    experiment: str
    metric: str
    role: str
    value: float
    verdict: str
    threshold: str = ""
    margin: float = float("nan")
    p_value: float = float("nan")
    null: str = ""
    spread: str = ""
    n: int = 0
    detail: str = ""
    runs: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        self.value = float(self.value) if self.value is not None else float("nan")


COLUMNS = [f for f in Row.__dataclass_fields__]

OPS = {
    ">=": lambda v, t: v >= t,
    "<=": lambda v, t: v <= t,
    "==": lambda v, t: v == t,
    ">": lambda v, t: v > t,
    "<": lambda v, t: v < t,
}


def margin(value: float, op: str, threshold: float) -> float:
    """Distance past the threshold in the passing direction (positive: the row passes)."""
    if value is None or not np.isfinite(value):
        return float("nan")
    if op in (">=", ">"):
        return float(value - threshold)
    if op in ("<=", "<"):
        return float(threshold - value)
    return -abs(float(value - threshold))  # "==": 0 when it holds


def compare(value: float, op: str, threshold: float) -> str:
    """PASS / FAIL of ``value op threshold``; INCONCLUSIVE for a missing or non-finite value
    (an infinite value counts for ``>=``: a threshold reached and never matched). The one
    comparison of every claim: a p-value is compared as ``p <= alpha`` (:func:`compare_p`)."""
    if value is None or np.isnan(value) or (np.isinf(value) and op not in (">=", ">")):
        return INCONCLUSIVE
    return PASS if OPS[op](value, threshold) else FAIL


def compare_p(p_value: float, alpha: float) -> str:
    """PASS when ``p_value <= alpha``, FAIL above, INCONCLUSIVE without a finite p."""
    return compare(p_value, "<=", alpha)


def passes(value: float, op: str, threshold: float) -> bool:
    """Whether ``value op threshold`` holds (False for a value that cannot be compared)."""
    return compare(value, op, threshold) == PASS


def all_of(*verdicts: str) -> str:
    """PASS when every verdict is PASS; INCONCLUSIVE when one could not be computed; else FAIL."""
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE
    return PASS if all(v == PASS for v in verdicts) else FAIL


def decide(role: str, value: float, op: str, threshold: float) -> str:
    """The verdict of a row of ``role`` whose value is compared with a threshold: a test's PASS or
    FAIL (:func:`compare`), a guard's PASS or INCONCLUSIVE, a description's INFO."""
    if role == "description":
        return INFO
    verdict = compare(value, op, threshold)
    if role == "guard":
        return PASS if verdict == PASS else INCONCLUSIVE
    return verdict


def _compared_row(claim, experiment, metric, role, value, op, threshold, verdict, **fields) -> Row:
    return Row(
        claim,
        experiment,
        metric,
        role,
        value,
        verdict,
        threshold=f"{op} {threshold:g}",
        margin=margin(value, op, threshold),
        **fields,
    )


def threshold_row(claim, experiment, metric, value, op, threshold, **fields) -> Row:
    """A ``test`` row: the value against the threshold (fields may set ``verdict`` to override,
    e.g. INCONCLUSIVE with too few seeds)."""
    verdict = fields.pop("verdict", None) or decide("test", value, op, threshold)
    return _compared_row(claim, experiment, metric, "test", value, op, threshold, verdict, **fields)


def pvalue_row(claim, experiment, metric, value, p_value, alpha, null, **fields) -> Row:
    """A ``test`` row judged by its p-value: PASS when p <= alpha; ``value`` is the statistic."""
    verdict = fields.pop("verdict", None) or compare_p(p_value, alpha)
    return Row(
        claim,
        experiment,
        metric,
        "test",
        value,
        verdict,
        threshold=f"p <= {alpha:g}",
        margin=float(alpha - p_value) if np.isfinite(p_value) else float("nan"),
        p_value=float(p_value),
        null=null,
        **fields,
    )


def guard_row(claim, experiment, metric, value, op, threshold, **fields) -> Row:
    """A precondition: PASS when it holds, else INCONCLUSIVE (the evidence is not usable)."""
    return _compared_row(
        claim, experiment, metric, "guard", value, op, threshold, decide("guard", value, op, threshold), **fields
    )


def role_row(role, claim, experiment, metric, value, op, threshold, **fields) -> Row:
    """A row of any ``role`` whose value is compared with a threshold (a description keeps only its
    value: it is reported, not judged)."""
    if role == "description":
        fields.pop("verdict", None)
        return description_row(claim, experiment, metric, value, **fields)
    if role == "guard":
        fields.pop("verdict", None)
        return guard_row(claim, experiment, metric, value, op, threshold, **fields)
    return threshold_row(claim, experiment, metric, value, op, threshold, **fields)


def self_check_row(claim, experiment, metric, violations, checked, **fields) -> Row:
    """An identity checked ``checked`` times with ``violations`` failures: ERROR when any failed
    (a bug, not a result), INCONCLUSIVE when nothing was checked."""
    verdict = INCONCLUSIVE if not checked else (PASS if violations == 0 else ERROR)
    return Row(
        claim,
        experiment,
        metric,
        "self-check",
        float(violations),
        verdict,
        threshold="== 0",
        margin=-float(violations),
        n=int(checked),
        **fields,
    )


def description_row(claim, experiment, metric, value, **fields) -> Row:
    return Row(claim, experiment, metric, "description", value, INFO, **fields)


def too_few_seeds(n: int, min_seeds: int) -> str:
    """The note that makes a statistic over ``n`` healthy seeds INCONCLUSIVE ('' with enough)."""
    return f"only {n} healthy seed(s), need {min_seeds}" if n < min_seeds else ""


def summarise(values) -> tuple[float, str, int]:
    """Median, '[min, max]' and count of the finite values."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return float("nan"), "", 0
    return float(np.median(arr)), f"[{arr.min():.3g}, {arr.max():.3g}]", int(arr.size)


def to_frame(rows) -> pd.DataFrame:
    """claims.csv: one row per Row (``runs`` joined by ';')."""
    frame = pd.DataFrame([asdict(r) if isinstance(r, Row) else r for r in rows], columns=COLUMNS)
    frame["runs"] = frame["runs"].map(lambda v: ";".join(v) if isinstance(v, (list, tuple)) else v)
    return frame


def combine(verdicts: pd.Series, roles: pd.Series) -> str:
    """One verdict from a claim's rows: ERROR if a self-check failed; INCONCLUSIVE if a guard did
    not hold; else FAIL if any test failed, INCONCLUSIVE if any test could not be computed, PASS
    if every test passed (INCONCLUSIVE without tests)."""
    v, role = pd.Series(verdicts).to_numpy(), pd.Series(roles).to_numpy()
    if (v[role == "self-check"] == ERROR).any():
        return ERROR
    if (v[role == "guard"] == INCONCLUSIVE).any():
        return INCONCLUSIVE
    tests = v[role == "test"]
    if tests.size == 0:
        return INCONCLUSIVE
    if (tests == FAIL).any():
        return FAIL
    if (tests == INCONCLUSIVE).any():
        return INCONCLUSIVE
    return PASS


def overall(frame: pd.DataFrame) -> pd.DataFrame:
    """One verdict per claim and experiment (``combine`` of its rows)."""
    if frame.empty:
        return pd.DataFrame(columns=["claim", "experiment", "verdict"])
    rows = [
        {"claim": claim, "experiment": experiment, "verdict": combine(g["verdict"], g["role"])}
        for (claim, experiment), g in frame.groupby(["claim", "experiment"], sort=False)
    ]
    return pd.DataFrame(rows)
