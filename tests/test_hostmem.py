"""After keep_freed_memory, a step's large temporaries reuse heap memory: no page faults."""

from __future__ import annotations

import resource
import sys

import pytest
import torch

from staircase.training.hostmem import keep_freed_memory

SIZES = [1 << 18, 3 << 18, 1 << 20, 1 << 16, 5 << 17]  # 0.25-4 MB tensors, as in a PINN step


def _step():
    first = [torch.ones(n) for n in SIZES]
    second = [torch.ones(n) for n in SIZES[::-1]]
    del first
    return second


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_step_temporaries_do_not_page_fault():
    assert keep_freed_memory()
    for _ in range(5):
        _step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        _step()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
    assert faults < 1000  # untuned glibc: ~5000 a step (every large tensor freshly mapped); tuned ~0-100
