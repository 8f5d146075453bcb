# Papers B (rank_collapse) and C (alignment): one training job per study (its grid cells and seeds
# stacked in one process), or, for a rank_collapse study with `split: cells`, one job per lambda x noise
# cell and a merge writing the study's files (docs/full-scale.md); and their figures and claim tables. Studies are selected by the claims
# they are tagged with (config.yaml: rank_collapse.studies.<name>.claims, alignment.studies...).
from staircase.workflow import lowrank_settings as lowrank_settings

LOWRANK = {f: lowrank_settings.studies(config, f) for f in lowrank_settings.FAMILIES}
LOWRANK_TAGS = {
    f: lowrank_settings.claims_of(config, f) for f in lowrank_settings.FAMILIES
}
# the audit thresholds the notebooks of papers B and C use (those claims.yaml lists for B1-C3),
# the config's over the schema's defaults
_LOWRANK_THRESHOLD_KEYS = claims_registry.threshold_keys("staircase.claims.lowrank")
LOWRANK_THRESHOLDS = {
    k: v
    for k, v in claims_registry.thresholds(config).items()
    if k in _LOWRANK_THRESHOLD_KEYS
}


lowrank_dir = lambda family, study: lowrank_settings.run_dir(family, study, RESULTS)
# {study: its number of parts} of the rank_collapse studies split into one job per cell (split: cells)
COLLAPSE_PARTS = {
    s: n
    for s in LOWRANK["rank_collapse"]
    if (n := lowrank_settings.parts(config, "rank_collapse", s))
}
COLLAPSE_WHOLE = [s for s in LOWRANK["rank_collapse"] if s not in COLLAPSE_PARTS]


# the files `name` of the given studies of a family
lowrank_files = lambda family, studies, name="claims_inputs.parquet": [
    f"{lowrank_dir(family, s)}/{name}" for s in studies
]


# the audit reads these runs' claims_inputs.parquet and run.json, verified against manifest.json
AUDIT_INPUTS.extend(
    f
    for family in lowrank_settings.FAMILIES
    for name in ("run.json", "manifest.json")
    for f in lowrank_files(family, LOWRANK[family], name)
)


# <root>/runs/<family>/<study> would also match the train rule's <root>/runs/<experiment>/<variant>
ruleorder: rank_collapse > train
ruleorder: rank_collapse_merge > train
ruleorder: alignment > train


rule rank_collapse:
    """Paper B: train one study's lambda x noise x seed grid of bias-free ReLU MLPs (coupled
    weight decay, full-batch SGD with momentum) and measure every layer at every checkpoint.
    """
    output:
        metrics=res("runs/rank_collapse/{study}/metrics.parquet"),
        layers=res("runs/rank_collapse/{study}/layers.parquet"),
        claims=res("runs/rank_collapse/{study}/claims_inputs.parquet"),
        spectra=res("runs/rank_collapse/{study}/spectra.npz"),
        run=res("runs/rank_collapse/{study}/run.json"),
        # written last: the files' checksums and the study's identity (staircase.records.manifest)
        manifest=res("runs/rank_collapse/{study}/manifest.json"),
    log:
        res("logs/rank_collapse/{study}.log"),
    benchmark:
        res("benchmarks/rank_collapse/{study}.tsv")
    wildcard_constraints:
        study=_one_of(COLLAPSE_WHOLE),
    conda:
        ENV
    threads: 1
    params:
        run_config=lambda w: json.dumps(
            LOWRANK["rank_collapse"][w.study], sort_keys=True
        ),
        out=lambda w: lowrank_dir("rank_collapse", w.study),
    shell:
        "python -m staircase collapse --run-config {params.run_config:q} --out {params.out} > {log} 2>&1"


# the files of a study's part {part}: the study's own files, for its cells
collapse_part_dir = (
    lambda study, part: f"{lowrank_dir('rank_collapse', study)}/parts/{part}"
)


rule rank_collapse_part:
    """Paper B, a study split by cells: train lambda x noise cell {part} (all its seeds) of the study."""
    output:
        metrics=res("runs/rank_collapse/{study}/parts/{part}/metrics.parquet"),
        layers=res("runs/rank_collapse/{study}/parts/{part}/layers.parquet"),
        claims=res("runs/rank_collapse/{study}/parts/{part}/claims_inputs.parquet"),
        spectra=res("runs/rank_collapse/{study}/parts/{part}/spectra.npz"),
        run=res("runs/rank_collapse/{study}/parts/{part}/run.json"),
        manifest=res("runs/rank_collapse/{study}/parts/{part}/manifest.json"),
    log:
        res("logs/rank_collapse/{study}/part{part}.log"),
    benchmark:
        res("benchmarks/rank_collapse/{study}/part{part}.tsv")
    wildcard_constraints:
        study=_one_of(COLLAPSE_PARTS),
        part="[0-9]+",
    conda:
        ENV
    threads: 1
    params:
        run_config=lambda w: json.dumps(
            LOWRANK["rank_collapse"][w.study], sort_keys=True
        ),
        out=lambda w: collapse_part_dir(w.study, w.part),
    shell:
        "python -m staircase collapse --run-config {params.run_config:q} --part {wildcards.part}"
        " --out {params.out} > {log} 2>&1"


rule rank_collapse_merge:
    """Paper B, a study split by cells: its tables, spectra and run.json from its parts', equal to those
    of the study trained in one job (staircase.training.collapse_parts)."""
    input:
        lambda w: [
            f"{collapse_part_dir(w.study, k)}/{name}"
            for k in range(COLLAPSE_PARTS[w.study])
            for name in (
                "metrics.parquet",
                "layers.parquet",
                "claims_inputs.parquet",
                "spectra.npz",
                "run.json",
            )
        ],
    output:
        metrics=res("runs/rank_collapse/{study}/metrics.parquet"),
        layers=res("runs/rank_collapse/{study}/layers.parquet"),
        claims=res("runs/rank_collapse/{study}/claims_inputs.parquet"),
        spectra=res("runs/rank_collapse/{study}/spectra.npz"),
        run=res("runs/rank_collapse/{study}/run.json"),
        # written last (staircase.records.manifest)
        manifest=res("runs/rank_collapse/{study}/manifest.json"),
    log:
        res("logs/rank_collapse/{study}.log"),
    wildcard_constraints:
        study=_one_of(COLLAPSE_PARTS),
    conda:
        ENV
    threads: 1
    params:
        run_config=lambda w: json.dumps(
            LOWRANK["rank_collapse"][w.study], sort_keys=True
        ),
        parts=lambda w: [
            collapse_part_dir(w.study, k) for k in range(COLLAPSE_PARTS[w.study])
        ],
        out=lambda w: lowrank_dir("rank_collapse", w.study),
    shell:
        "python -m staircase collapse-merge --run-config {params.run_config:q} --parts {params.parts}"
        " --out {params.out} > {log} 2>&1"


# seconds of reading and concatenating: on a cluster, on the submitting node
localrules:
    rank_collapse_merge,


rule alignment:
    """Paper C: train one study's seeds (bias-free ReLU-then-linear nets, float64) on separable
    data and measure layers, adjacent pairs and invariances at every checkpoint."""
    output:
        metrics=res("runs/alignment/{study}/metrics.parquet"),
        layers=res("runs/alignment/{study}/layers.parquet"),
        pairs=res("runs/alignment/{study}/pairs.parquet"),
        claims=res("runs/alignment/{study}/claims_inputs.parquet"),
        spectra=res("runs/alignment/{study}/spectra.npz"),
        run=res("runs/alignment/{study}/run.json"),
        # written last: the files' checksums and the study's identity (staircase.records.manifest)
        manifest=res("runs/alignment/{study}/manifest.json"),
    log:
        res("logs/alignment/{study}.log"),
    benchmark:
        res("benchmarks/alignment/{study}.tsv")
    wildcard_constraints:
        study=_one_of(LOWRANK["alignment"]),
    conda:
        ENV
    threads: 1
    params:
        run_config=lambda w: json.dumps(LOWRANK["alignment"][w.study], sort_keys=True),
        out=lambda w: lowrank_dir("alignment", w.study),
    shell:
        "python -m staircase align --run-config {params.run_config:q} --out {params.out} > {log} 2>&1"


TARGETS.extend(job_outputs(rules.rank_collapse, study=COLLAPSE_WHOLE))
TARGETS.extend(job_outputs(rules.rank_collapse_merge, study=list(COLLAPSE_PARTS)))
_parts = [(s, k) for s, n in COLLAPSE_PARTS.items() for k in range(n)]
TARGETS.extend(
    job_outputs(
        rules.rank_collapse_part,
        study=[s for s, _ in _parts],
        part=[k for _, k in _parts],
    )
)
TARGETS.extend(job_outputs(rules.alignment, study=list(LOWRANK["alignment"])))


# ---- figures and tables, registered by the claims the studies test ----------------------------
for _study in lowrank_settings.tagged(config, "rank_collapse", ["B1"]):
    add_figure(
        f"collapse_lambda_{_study}",
        "lowrank_collapse_lambda",
        lowrank_files("rank_collapse", [_study]),
        caption=claims_registry.caption("collapse_lambda", _study),
        run_dir=lowrank_dir("rank_collapse", _study),
        thresholds=LOWRANK_THRESHOLDS,
    )
for _study in lowrank_settings.tagged(config, "rank_collapse", ["B2"]):
    add_figure(
        f"collapse_noise_{_study}",
        "lowrank_collapse_noise",
        lowrank_files("rank_collapse", [_study]),
        caption=claims_registry.caption("collapse_noise", _study),
        run_dir=lowrank_dir("rank_collapse", _study),
        thresholds=LOWRANK_THRESHOLDS,
    )
if LOWRANK["rank_collapse"]:
    add_figure(
        "collapse_spectra",
        "lowrank_collapse_spectra",
        lowrank_files("rank_collapse", LOWRANK["rank_collapse"], "spectra.npz"),
        caption=claims_registry.caption("collapse_spectra"),
        runs={s: lowrank_dir("rank_collapse", s) for s in LOWRANK["rank_collapse"]},
    )
_b3 = lowrank_settings.tagged(config, "rank_collapse", ["B3"])
if _b3:
    add_figure(
        "collapse_bound",
        "lowrank_collapse_bound",
        lowrank_files("rank_collapse", _b3)
        + lowrank_files("rank_collapse", _b3, "layers.parquet"),
        caption=claims_registry.caption("collapse_bound"),
        runs={s: lowrank_dir("rank_collapse", s) for s in _b3},
        thresholds=LOWRANK_THRESHOLDS,
    )
# what staircase.claims.lowrank reads of a study
LOWRANK_CLAIM_FILES = {
    "rank_collapse": (
        "claims_inputs.parquet",
        "layers.parquet",
        "run.json",
        "manifest.json",
    ),
    "alignment": (
        "claims_inputs.parquet",
        "layers.parquet",
        "pairs.parquet",
        "run.json",
        "manifest.json",
    ),
}
_claimed = {
    f: {s: LOWRANK_TAGS[f][s] for s in LOWRANK[f] if LOWRANK_TAGS[f][s]}
    for f in LOWRANK
}
for _family, _table in (
    ("rank_collapse", "collapse_claims"),
    ("alignment", "alignment_claims"),
):
    if _claimed[_family]:
        add_table(
            _table,
            "lowrank_claims",
            [
                f
                for name in LOWRANK_CLAIM_FILES[_family]
                for f in lowrank_files(_family, _claimed[_family], name)
            ],
            caption=claims_registry.caption(_table),
            family=_family,
            studies=_claimed[_family],
            runs_dir=res(f"runs/{_family}"),
            thresholds=LOWRANK_THRESHOLDS,
        )
if LOWRANK["alignment"]:
    _runs = {s: lowrank_dir("alignment", s) for s in LOWRANK["alignment"]}
    add_figure(
        "alignment_training",
        "lowrank_alignment_training",
        lowrank_files("alignment", LOWRANK["alignment"], "layers.parquet")
        + lowrank_files("alignment", LOWRANK["alignment"], "pairs.parquet"),
        caption=claims_registry.caption("alignment_training"),
        runs=_runs,
    )
    add_figure(
        "alignment_invariance",
        "lowrank_alignment_invariance",
        lowrank_files("alignment", LOWRANK["alignment"], "pairs.parquet"),
        caption=claims_registry.caption("alignment_invariance"),
        runs=_runs,
        thresholds=LOWRANK_THRESHOLDS,
    )
