"""Gram matrices of neurons, their spectra, the epsilon-rank, and peer rank metrics.

Conventions (docs/quantities.md):

* ``features`` is an (N, n) array: n neurons (basis functions) evaluated at N points, or a
  stack (..., N, n) of such arrays (one per model). Torch tensors of any float dtype are accepted.
* The Gram (mass) matrix is ``M = sum_k w_k phi(x_k) phi(x_k)^T``, formed in float64 after casting
  the features (on their own device, so a GPU forms it), then moved to the host. Weights default
  to 1/N (the "mean" normalisation); quadrature weights give the L2(Omega) "integral" one.
* Eigenvalues come from a symmetric solver (``numpy.linalg.eigvalsh``) in float64 on the CPU and
  are returned sorted in decreasing order. Rounding can leave tiny negative values: they are kept
  as computed, and every metric below treats them as zero.

The eigenvalues of M are the squared singular values of ``diag(sqrt(w)) Phi``; the peer metrics
are written in terms of those singular values ``s_i = sqrt(max(lambda_i, 0))``:

* epsilon-rank (paper A):     r_eps = #{i : lambda_i > eps}
* effective rank (Roy & Vetterli 2007): exp(H(p)), p_i = s_i / sum_j s_j, H the Shannon entropy
* stable rank:                sum_i s_i^2 / s_1^2  = trace(M) / lambda_max
* numerical rank:             #{i : s_i > rtol * s_1}
"""

from __future__ import annotations

import numpy as np

try:  # torch is optional for this module: numpy features work without it
    import torch
except ImportError:  # pragma: no cover
    torch = None


def _as_float64(features, weights):
    """Return (Phi, w) as float64 arrays/tensors on the features' own device."""
    if torch is not None and isinstance(features, torch.Tensor):
        phi = features.detach().to(torch.float64)
        if weights is None:
            w = torch.full((phi.shape[-2],), 1.0 / phi.shape[-2], dtype=torch.float64, device=phi.device)
        else:
            w = torch.as_tensor(np.asarray(weights, dtype=np.float64), device=phi.device)
        return phi, w
    phi = np.asarray(features, dtype=np.float64)
    w = np.full(phi.shape[-2], 1.0 / phi.shape[-2]) if weights is None else np.asarray(weights, dtype=np.float64)
    return phi, w


def gram(features, weights=None) -> np.ndarray:
    """Float64 Gram matrix sum_k w_k phi(x_k) phi(x_k)^T, shape (..., n, n), as a numpy array."""
    if torch is not None and isinstance(features, torch.Tensor) and features.device.type == "cpu":
        features = features.detach().numpy()  # on the CPU numpy's float64 matmul was ~1.4x faster here
    phi, w = _as_float64(features, weights)
    if w.shape != (phi.shape[-2],):
        raise ValueError(f"weights have shape {tuple(w.shape)}, expected ({phi.shape[-2]},)")
    if torch is not None and isinstance(phi, torch.Tensor):
        m = ((phi * w[:, None]).transpose(-1, -2) @ phi).cpu().numpy()
    else:
        m = np.swapaxes(phi * w[:, None], -1, -2) @ phi
    return 0.5 * (m + np.swapaxes(m, -1, -2))  # exact symmetry for the symmetric solver


def spectrum_of_gram(m: np.ndarray) -> np.ndarray:
    """Eigenvalues of symmetric matrices (..., n, n), float64, sorted in decreasing order."""
    return np.linalg.eigvalsh(np.asarray(m, dtype=np.float64))[..., ::-1].copy()


def spectrum(features, weights=None) -> np.ndarray:
    """Sorted (decreasing) eigenvalues of the Gram matrix of ``features``."""
    return spectrum_of_gram(gram(features, weights))


def eps_rank_from_spectrum(spec: np.ndarray, eps):
    """Number of eigenvalues above each eps. Scalar eps -> int (or array over leading dims);
    a sequence of eps -> array with a trailing eps axis."""
    spec = np.asarray(spec, dtype=np.float64)
    eps_arr = np.asarray(eps, dtype=np.float64)
    if np.any(eps_arr <= 0):
        raise ValueError(f"eps must be positive, got {eps}")
    counts = (spec[..., None] > eps_arr.reshape(-1)).sum(axis=-2)
    if eps_arr.ndim == 0:
        counts = counts[..., 0]
        return int(counts) if counts.ndim == 0 else counts
    return counts


def eps_rank(features, eps: float, weights=None) -> int:
    """epsilon-rank of (N, n) features: the number of Gram eigenvalues above eps."""
    return eps_rank_from_spectrum(spectrum(features, weights), eps)


def singular_values_from_spectrum(spec: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(np.asarray(spec, dtype=np.float64), 0.0, None))


def effective_rank(spec: np.ndarray) -> np.ndarray:
    """Roy-Vetterli effective rank exp(H(p)) with p the normalised singular values."""
    s = singular_values_from_spectrum(spec)
    total = s.sum(axis=-1, keepdims=True)
    p = np.divide(s, total, out=np.zeros_like(s), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)
    return np.where(total[..., 0] > 0, np.exp(h), 0.0)


def stable_rank(spec: np.ndarray) -> np.ndarray:
    """sum_i s_i^2 / s_max^2 (0 for an all-zero spectrum)."""
    lam = np.clip(np.asarray(spec, dtype=np.float64), 0.0, None)
    top = lam.max(axis=-1)
    return np.divide(lam.sum(axis=-1), top, out=np.zeros_like(top), where=top > 0)


def numerical_rank(spec: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """#{i : s_i > rtol * s_max}; rtol 1e-6 sits just above float32 feature noise."""
    s = singular_values_from_spectrum(spec)
    return (s > rtol * s.max(axis=-1, keepdims=True)).sum(axis=-1) * (s.max(axis=-1) > 0)


PEER_METRICS = {
    "effective_rank": effective_rank,
    "stable_rank": stable_rank,
    "numerical_rank": numerical_rank,
}
