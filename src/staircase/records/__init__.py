"""The results format, written and read in one place (README, "Results format").

``writer`` writes a run's metrics.parquet, ranks.parquet, spectra.npz and run.json;
``runs`` reads them back (and names a damaged file with its remedy); ``provenance`` writes files
atomically, records what produced them and keeps two jobs from writing one folder.
"""
