"""The package's version, in a module of its own so that any layer can record it (run.json)
without importing the package's top level."""

__version__ = "0.1.0"
