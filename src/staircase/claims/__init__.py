"""Claims: every verdict of the audit, as a statistical test with a null model.

``registry`` (claims.yaml: each claim's statistic, null, decision and figures, declared once),
``verdicts`` (the one row type), ``audit`` (paper A's claims A1-A7 from a results root),
``comparison`` (methods against their baseline, A6/A7), ``lowrank`` (papers B and C),
``calibration`` / ``lowrank_calibration`` (false-positive rates and power on synthetic data with
a known answer, from ``synthetic``), ``compare`` (two results roots side by side).
Reads results through records; computes with numpy (no torch); see docs/claims.md.
"""
