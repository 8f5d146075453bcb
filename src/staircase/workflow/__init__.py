"""Workflow glue: from config.yaml to one resolved config per job, checked before any job.

``config`` (variants, sweeps, scales, checks), ``schema`` (the JSON schema and the checks a schema
cannot make), ``defaults`` (merging of nested settings), ``lowrank_settings`` (papers B and C
sections), ``memory`` (a job's memory before it starts), ``cost`` (projected CPU time),
``notebooks`` (papermill failures in one line). The Snakefile and the CLI call these.
"""
