"""Training: the trainer that runs one job (every seed of a variant, stacked) and measures as it
trains, the training methods (optimisers, schedules, pre-training), the speed features, the
``Tracker`` for a user's own loop, and the papers B and C training jobs (``collapse``, ``alignment``).
Imports networks, problems, records, core, errors; never the workflow or the claims.
"""
