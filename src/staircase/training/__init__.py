"""Training: paper A's trainer of one job (every seed of a variant, stacked), which measures as it
trains (``trainer``, the reference loop; ``speed``, the opt-in speed features, each tested equal to
it; ``clocks``, ``recorder``), the training methods (``methods``, ``fastopt``, ``hostmem``), the
``Tracker`` for a user's own loop (``tracker``), and papers B and C's jobs (``collapse``,
``alignment``) on one shared loop (``weights_run``).
Imports networks, problems, records, core, errors; never the workflow or the claims.
"""
