"""torch, imported when first used.

The task classes and the run-config checks are imported by the config's validation, which every
Snakemake command runs (a dry run too) and which builds tasks but no tensors; importing torch there
cost each command about 2.2 s (PERFORMANCE.md, "The floor"). A module that uses torch only inside
its functions imports this module's ``torch`` instead of torch itself: the first name read from it
imports torch, and each name read is then kept on the proxy, so a later read costs what a module
attribute read costs (the training loop's tasks read torch functions at every step).
"""

from __future__ import annotations

import functools
import importlib


class _LazyTorch:
    def __getattr__(self, name: str):
        value = getattr(importlib.import_module("torch"), name)
        setattr(self, name, value)
        return value


torch = _LazyTorch()


def no_grad(fn):
    """``@torch.no_grad()`` for a function, entered at each call rather than built at import."""

    @functools.wraps(fn)
    def without_grad(*args, **kwargs):
        with torch.no_grad():
            return fn(*args, **kwargs)

    return without_grad
