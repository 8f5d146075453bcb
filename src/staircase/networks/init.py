"""Initial weights of one linear layer of a stacked network, drawn in float64 from a seeded
generator: the ``model.init`` schemes (default, xavier, kaiming) and the structured first layer
(neurons with centres spread over the domain; see staircase.training.methods for when it helps).
"""

from __future__ import annotations

import math

import numpy as np
import torch

INITS = ("default", "xavier", "kaiming", "structured")


def uniform(shape, bound, gen):
    """Uniform in +-bound, drawn in float64 from ``gen`` (the draw every uniform scheme shares)."""
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound


def init_linear(fan_in: int, fan_out: int, scheme: str, gen: torch.Generator):
    """Weights (fan_in, fan_out) and bias (1, fan_out) in float64, drawn from ``gen``."""
    if scheme in ("default", "structured"):  # structured: only the first layer differs
        bound = 1.0 / math.sqrt(fan_in)
        w = uniform((fan_in, fan_out), bound, gen)
        return w, uniform((1, fan_out), bound, gen)
    if scheme == "xavier":
        w = uniform((fan_in, fan_out), math.sqrt(6.0 / (fan_in + fan_out)), gen)
        return w, torch.zeros(1, fan_out, dtype=torch.float64)
    if scheme == "kaiming":
        w = torch.randn((fan_in, fan_out), generator=gen, dtype=torch.float64) * math.sqrt(2.0 / fan_in)
        return w, torch.zeros(1, fan_out, dtype=torch.float64)
    raise ValueError(f"model.init: unknown initialisation {scheme!r}; choose one of {list(INITS)}")


def structured_scale(n: int, bounds, factor: float = 1.0) -> float:
    """s = factor (n^(1/d) - 1) / |Omega|^(1/d): about the inverse spacing of n centres in Omega."""
    d = len(bounds)
    volume = float(np.prod([b - a for a, b in bounds]))
    return factor * (n ** (1.0 / d) - 1.0) / volume ** (1.0 / d)


def structured_first_layer(n: int, bounds, gen: torch.Generator, seed: int, factor: float = 1.0):
    """First layer whose neurons sigma(s u_i . (x - c_i)) have centres c_i spread uniformly over
    the box ``bounds`` (scrambled Halton, seeded) and random unit directions u_i (from ``gen``).
    Returns W (d, n) and b (1, n) in float64."""
    # scipy.stats on demand: importing it costs every training process about 0.6 s of CPU, and only
    # this initialisation (and quasi-Monte Carlo points) use it
    from scipy.stats import qmc

    d = len(bounds)
    lo = np.array([a for a, _ in bounds], dtype=float)
    hi = np.array([b for _, b in bounds], dtype=float)
    centres = torch.as_tensor(lo + (hi - lo) * qmc.Halton(d, scramble=True, seed=seed).random(n))
    u = torch.randn((d, n), generator=gen, dtype=torch.float64)
    u = u / torch.linalg.vector_norm(u, dim=0, keepdim=True)
    w = structured_scale(n, bounds, factor) * u
    b = -(centres * w.T).sum(dim=1)[None, :]
    return w, b
