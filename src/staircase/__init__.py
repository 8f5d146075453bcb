"""staircase: how the rank of a network's features and weights evolves during training.

The package is the only place with training and mathematics; the Snakemake workflow and the
notebooks only call it and read what it writes. ``staircase.Tracker`` (:mod:`staircase.training.tracker`)
records the eps-ranks of any PyTorch model from its own training loop.
"""

from staircase.version import __version__


def __getattr__(name):  # Tracker on first use: `import staircase` stays light (no torch)
    if name == "Tracker":
        from staircase.training.tracker import Tracker

        return Tracker
    raise AttributeError(f"module 'staircase' has no attribute {name!r}")


__all__ = ["Tracker", "__version__"]
