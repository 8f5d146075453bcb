"""staircase: how the rank of a network's features and weights evolves during training.

The package is the only place with training and mathematics; the Snakemake workflow and the
notebooks only call it and read what it writes.
"""

__version__ = "0.1.0"
