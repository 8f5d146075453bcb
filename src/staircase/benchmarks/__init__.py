"""Benchmarks and accuracy checks of the tool itself, apart from the product: ``bench`` (speed and
memory against a naive PyTorch loop, PERFORMANCE.md) and ``quadcheck`` (is the rank quadrature
fine enough). Only the CLI imports this package.
"""
