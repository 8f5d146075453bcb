"""Shared test fixtures."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="module")
def single_blas_thread():
    """Run numpy's BLAS/LAPACK on one thread for the module.

    The math tests use small matrices, for which threads only cost: once torch's OpenMP pool has
    run (any forward pass), an OpenBLAS pool spinning on the same few cores made the numpy linear
    algebra several times slower. Module scoped and undone afterwards, so other test files are
    unaffected.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield
