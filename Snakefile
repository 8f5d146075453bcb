# staircase: every figure and table from nothing with `snakemake --cores all`.
#
# This file stays thin: configuration, validation, the rule files, and the final target.
# Rules:  workflow/rules/common.smk  - config validation, experiment/variant lists, paths
#         workflow/rules/train.smk   - one training job per experiment variant (all seeds stacked)
#         workflow/rules/figures.smk - papermill notebooks -> figures (PNG, PDF) and HTML


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        all_targets(),
