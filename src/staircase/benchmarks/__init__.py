"""Benchmarks and accuracy checks of the tool itself, apart from the product: ``bench`` (speed and
memory against a naive PyTorch loop, PERFORMANCE.md) and ``quadcheck`` (is the rank quadrature
fine enough). Only the CLI imports this package.
"""

# what `staircase bench --only` chooses from; here, not in bench.py, so that the command line can
# list them without loading the benchmarks
COMPARISONS = ("fit", "pde", "gpu", "schedule", "tracker")
