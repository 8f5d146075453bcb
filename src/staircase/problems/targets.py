"""Closed-form target functions with their Laplacians (exact solutions of the fitting and PDE
tasks). Everything here is numpy, float64."""

from __future__ import annotations

import numpy as np


def _as_rows(values, d: int, what: str, m: int) -> np.ndarray:
    """values as an (m, d) array: a list of m numbers when d == 1, else a list of m length-d lists."""
    arr = np.asarray(values, dtype=float)
    if d == 1 and arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape != (m, d):
        raise ValueError(
            f"task: {what} must give one entry per term ({m} terms), each "
            + ("a number" if d == 1 else f"a list of {d} numbers")
            + f"; got shape {arr.shape}"
        )
    return arr


class SineProducts:
    """u(x) = sum_m a_m prod_i sin(pi (k_mi x_i + p_mi)) on R^d.

    Each term is an eigenfunction of the Laplacian: Delta term_m = -pi^2 |k_m|^2 term_m. A phase
    p = 0.5 turns a factor into a cosine, and k = 0 with p = 0.5 makes it the constant 1, so the
    family holds sums as well as products of sines in the separate coordinates.
    """

    def __init__(self, wavevectors, amplitudes, phases, d: int):
        self.amplitudes = np.asarray(amplitudes, dtype=float).reshape(-1)
        m = len(self.amplitudes)
        self.k = _as_rows(wavevectors, d, "wavevectors/frequencies", m)
        self.p = _as_rows(phases, d, "phases", m)
        self.d = d

    def terms(self, x: np.ndarray) -> np.ndarray:
        """(N, M): the product of sines of every term (without amplitude)."""
        x = np.asarray(x, dtype=float)
        arg = np.pi * (x[:, None, :] * self.k[None] + self.p[None])  # (N, M, d)
        return np.prod(np.sin(arg), axis=-1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.terms(x) @ self.amplitudes

    def laplacian(self, x: np.ndarray) -> np.ndarray:
        eig = -(np.pi**2) * np.sum(self.k**2, axis=1)
        return self.terms(x) @ (self.amplitudes * eig)


class RidgeSum:
    """f(x) = sum_i a_i sin(pi k_i w_i . x) with fixed unit directions w_i in R^d: a function of
    high dimension that varies along a few directions only."""

    def __init__(self, directions, frequencies, amplitudes):
        w = np.asarray(directions, dtype=float)
        self.w = w / np.linalg.norm(w, axis=1, keepdims=True)
        self.k = np.asarray(frequencies, dtype=float).reshape(-1)
        self.a = np.asarray(amplitudes, dtype=float).reshape(-1)
        if not (len(self.w) == len(self.k) == len(self.a)):
            raise ValueError(
                f"task: {len(self.k)} frequencies, {len(self.a)} amplitudes and {len(self.w)} directions; "
                "give one of each per term"
            )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.sin(np.pi * self.k * (np.asarray(x, dtype=float) @ self.w.T)) @ self.a

    def laplacian(self, x: np.ndarray) -> np.ndarray:
        # |w_i| = 1, so Delta sin(pi k w.x) = -(pi k)^2 sin(pi k w.x)
        return np.sin(np.pi * self.k * (np.asarray(x, dtype=float) @ self.w.T)) @ (-self.a * (np.pi * self.k) ** 2)


def random_directions(n: int, d: int, seed: int) -> np.ndarray:
    """n unit vectors in R^d, uniform on the sphere, from a fixed seed."""
    g = np.random.default_rng(seed).standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)
