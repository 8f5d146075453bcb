"""Linear algebra of weight matrices for papers B and C (numpy, float64, batched over leading axes).

Matrices follow the papers' convention W (n_out, n_in). Singular values come sorted in decreasing
order; ``staircase.core.rank``'s peer metrics take Gram eigenvalues, i.e. squared singular values
(``rank_metrics`` does that conversion).

* ``distance_to_rank(s, K)``  - min over rank-K matrices of ||W - A||_F = sqrt(sum_{j>K} s_j^2)
  (Eckart-Young); ``relative`` divides by ||W||_F.
* ``within_class``            - for a layer input X (N, n) and labels: ||X - M||_F, where row i of M
  is the mean of X over the class of sample i (M has rank <= K), and the NC1 metric
  tr(Sigma_W Sigma_B^+) / K of Papyan et al. (within-class covariance against the pseudo-inverse of
  the between-class covariance of the class means around the global mean).
* ``top_alignment(W_k, W_k1)``- |<u_1(W_k), v_1(W_{k+1})>|: the top left singular vector of W_k
  against the top right singular vector of W_{k+1} (both in R^{n_k}); 1 when aligned.
* ``invariance(W_k, W_k1)``   - W_{k+1}^T W_{k+1} - W_k W_k^T (n_k, n_k): conserved by gradient flow
  when nothing nonlinear sits between the two layers; only its diagonal when a ReLU does.
"""

from __future__ import annotations

import numpy as np

from staircase.core import rank as rk

# Sigma_B has rank <= K - 1; directions below this fraction of its largest eigenvalue count as zero
NC1_RTOL = 1e-6


def singular_values(w: np.ndarray) -> np.ndarray:
    return np.linalg.svd(np.asarray(w, dtype=np.float64), compute_uv=False)


def distance_to_rank(s: np.ndarray, k: int, relative: bool = False) -> np.ndarray:
    """From singular values s (..., r) sorted decreasing: sqrt(sum_{j>k} s_j^2), optionally / ||s||_2."""
    s = np.asarray(s, dtype=np.float64)
    tail = np.sqrt((s[..., k:] ** 2).sum(axis=-1))
    if not relative:
        return tail
    total = np.sqrt((s**2).sum(axis=-1))
    return np.divide(tail, total, out=np.full_like(tail, np.nan), where=total > 0)


def rank_metrics(s: np.ndarray, rtol: float) -> dict[str, np.ndarray]:
    """Stable, effective and numerical rank from singular values, via staircase.core.rank (Gram
    eigenvalues = s^2); numerical rank counts s_j > rtol * s_1."""
    spec = np.asarray(s, dtype=np.float64) ** 2
    return {
        "stable_rank": rk.stable_rank(spec),
        "effective_rank": rk.effective_rank(spec),
        "numerical_rank": rk.numerical_rank(spec, rtol=rtol).astype(np.float64),
    }


def class_means(x: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """(..., K, n): the mean of x (..., N, n) over each class."""
    onehot = np.eye(classes)[y]  # (N, K)
    counts = onehot.sum(axis=0)
    return np.einsum("nk,...nd->...kd", onehot, x) / counts[:, None]


def within_class(x: np.ndarray, y: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """Within-class variability of x (..., N, n) with labels y (N,): ||X - M||_F, its ratio to ||X||_F,
    and NC1 = tr(Sigma_W Sigma_B^+)/K."""
    x = np.asarray(x, dtype=np.float64)
    mu = class_means(x, y, classes)
    centred = x - mu[..., y, :]
    fro = np.sqrt((centred**2).sum(axis=(-2, -1)))
    total = np.sqrt((x**2).sum(axis=(-2, -1)))
    n = x.shape[-2]
    sigma_w = np.swapaxes(centred, -1, -2) @ centred / n
    between = mu - x.mean(axis=-2, keepdims=True)
    sigma_b = np.swapaxes(between, -1, -2) @ between / classes
    nc1 = np.trace(sigma_w @ np.linalg.pinv(sigma_b, rtol=NC1_RTOL, hermitian=True), axis1=-2, axis2=-1) / classes
    return {
        "within_class": fro,
        "within_class_rel": np.divide(fro, total, out=np.full_like(fro, np.nan), where=total > 0),
        "nc1": nc1,
    }


def top_alignment(w_k: np.ndarray, w_k1: np.ndarray) -> np.ndarray:
    """|<top left singular vector of W_k, top right singular vector of W_{k+1}>|, batched."""
    u, _, _ = np.linalg.svd(np.asarray(w_k, dtype=np.float64))
    _, _, vh = np.linalg.svd(np.asarray(w_k1, dtype=np.float64))
    return np.abs((u[..., :, 0] * vh[..., 0, :]).sum(axis=-1))


def invariance(w_k: np.ndarray, w_k1: np.ndarray) -> np.ndarray:
    """W_{k+1}^T W_{k+1} - W_k W_k^T, batched: (..., n_k, n_k)."""
    w_k, w_k1 = np.asarray(w_k, dtype=np.float64), np.asarray(w_k1, dtype=np.float64)
    return np.swapaxes(w_k1, -1, -2) @ w_k1 - w_k @ np.swapaxes(w_k, -1, -2)


def invariance_drift(d_now: np.ndarray, d_start: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Drift of the invariance since the start relative to ``scale`` (the pair's mean ||W||_F^2):
    ||D(t) - D(0)||_F / scale (full) and ||diag(D(t) - D(0))||_2 / scale (diagonal)."""
    diff = np.asarray(d_now) - np.asarray(d_start)
    full = np.sqrt((diff**2).sum(axis=(-2, -1)))
    diag = np.sqrt((np.diagonal(diff, axis1=-2, axis2=-1) ** 2).sum(axis=-1))
    return {"drift_full": full / scale, "drift_diag": diag / scale}
