"""The results format, written and read in one place (docs/outputs.md, docs/results-format.md).

``writer`` writes a run's metrics.parquet, ranks.parquet, spectra.npz and run.json;
``runs`` reads them back (and names a damaged file with its remedy); ``provenance`` writes files
atomically, records what produced them and keeps two jobs from writing one folder.
"""
