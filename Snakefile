# staircase: every figure and table from nothing with `snakemake --cores all`.
#
# This file stays thin: configuration, validation, the rule files, and the final target.
# Rules:  workflow/rules/common.smk  - config validation, experiment/variant lists, paths
#         workflow/rules/train.smk   - one training job per experiment variant (all seeds stacked)
#         workflow/rules/analysis.smk - figures and tables of claims A1-A5, chosen by each experiment's claims
#         workflow/rules/methods.smk - methods against a baseline (claims A6, A7): curves and tables
#         workflow/rules/notebooks.smk - generic: papermill notebook -> figure / table, and HTML
#         workflow/rules/lowrank.smk - papers B and C: rank collapse and alignment studies, their figures
#         workflow/rules/audit.smk   - claim verdicts from the results (results/audit/claims.md)


# config.yaml and every --configfile through staircase's strict loader first (duplicate keys,
# YAML 1.1 readings, alias bombs, templates that run code): one line, before Snakemake reads them
include: "workflow/rules/configfiles.smk"


# config.yaml is the default configuration; a file given with --configfile replaces it instead of
# being merged into it (Snakemake's own way), so that a tiny config runs only what it names.
# --config KEY=VALUE still goes over either; --config set=PATH=VALUE gives typed, nested settings
# (workflow/rules/common.smk, docs/cli-recipes.md).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/lowrank.smk"
include: "workflow/rules/methods.smk"
# last: the generic notebook rules and the audit see every registered figure and table
include: "workflow/rules/notebooks.smk"
include: "workflow/rules/audit.smk"


report: "workflow/report/workflow.rst"


# the full scale is hours of CPU: say what it will cost before anything starts (dry runs too)
if config["scale"] == "full" and workflow.is_main_process:
    print_cost_projection()


# every declared output of every job (TARGETS, workflow/rules/common.smk): a result file that is
# missing is made again, whether or not another job reads it
rule all:
    default_target: True
    input:
        TARGETS,


onsuccess:
    remove_empty_checkpoint_folders()
    print_audit_summary()
