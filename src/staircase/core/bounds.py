"""A computable lower bound on the loss from the epsilon-rank of the features (docs/quantities.md).

Write the network output as u = sum_j a_j phi_j (the bias b is the coefficient of phi_0 = 1, so
callers prepend a column of ones and b to the coefficients). In the quadrature inner product
<g, h> = sum_k w_k g(x_k) h(x_k), let (lambda_k, v_k) be the eigenpairs of the Gram matrix M of
the features and psi_k = sum_j v_kj phi_j: the psi_k are orthogonal with ||psi_k||^2 = lambda_k.
Split u into its part in the directions with lambda_k > eps, which lies in
V_r = span{psi_k : lambda_k > eps}, and the rest, whose norm is at most sqrt(eps) ||a||. Then

    ||u - f|| >= dist(f, V_r) - sqrt(eps) ||a||,   so   L >= (dist(f, V_r) - sqrt(eps) ||a||)_+^2.

The same algebra holds for any loss that is a weighted sum of squares of a residual linear in a:
for a physics-informed loss the "features" are the neurons' images under the operator (and their
boundary traces), stacked, with the loss weights of each part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BoundResult:
    lower_bound: float  # (dist(f, V_r) - sqrt(eps) ||a||)_+^2
    loss: float  # the measured loss of the given coefficients, recomputed here in float64
    best_loss: float  # min over all coefficients: the best loss reachable with these features
    best_loss_top_r: float  # dist(f, V_r)^2: best loss using only the r top eigen-directions
    rank: int  # r = number of Gram eigenvalues above eps
    coef_norm: float  # ||a||

    @property
    def violated(self) -> bool:
        """True if the bound exceeds the loss beyond float64 rounding: must never happen."""
        return self.lower_bound > self.loss * (1 + 1e-9) + 1e-15


def loss_lower_bound(features, target, coef, weights, eps: float) -> BoundResult:
    """Lower bound on sum_k w_k (features @ coef - target)_k^2 for one model.

    features: (N, n) features (include the column of ones for a bias); target: (N,);
    coef: (n,) output-layer coefficients matching the columns; weights: (N,) quadrature weights.
    """
    return loss_lower_bounds(np.asarray(features)[None], target, np.asarray(coef).reshape(1, -1), weights, eps)[0]


def loss_lower_bounds(features, target, coefs, weights, eps: float) -> list[BoundResult]:
    """``loss_lower_bound`` of each model of a stack: features (S, N, n), coefs (S, n), a target
    (N,) for all or one per model (S, N), and one set of weights (N,) for all.

    With B = diag(sqrt(w)) Phi and g = sqrt(w) f (the quadrature norm becomes the Euclidean one),
    one QR of [B g] without its Q (LAPACK's R-only mode, a third of the time of a QR that forms Q)
    gives everything: the R of B, h = Q^T g and the norm of g's part outside span(B) (the last
    diagonal entry). The eigenpairs (lambda_k, v_k) of R^T R = B^T B, all seeds in one call, then
    give V_r and dist(g, V_r)^2 = |g_out|^2 + |h - R V_r diag(1/lambda) V_r^T R^T h|^2, a residual
    formed explicitly in n dimensions (no cancellation of two large squares). The best loss over all
    coefficients is |g_out|^2 where numpy.linalg.lstsq's default cut-off keeps every direction. A
    model the eigenpairs cannot serve (eps below their rounding, or directions near the cut-off:
    dead neurons) takes the SVD of its small R instead (:func:`_needs_svd`, :func:`_from_svd`).
    """
    phi = np.asarray(features, dtype=np.float64)
    f = np.asarray(target, dtype=np.float64)
    f = np.broadcast_to(f.reshape(1, -1) if f.size == phi.shape[1] else f.reshape(phi.shape[:2]), phi.shape[:2])
    a = np.asarray(coefs, dtype=np.float64).reshape(phi.shape[0], -1)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    sw = np.sqrt(w)
    b = sw[:, None] * phi
    g = sw * f
    n = b.shape[2]
    aug = np.concatenate([b, g[..., None]], axis=2)
    if aug.shape[1] <= n:  # fewer points than features: zero rows change no norm and no span
        aug = np.concatenate([aug, np.zeros((len(aug), n + 1 - aug.shape[1], n + 1))], axis=1)
    r_aug = np.linalg.qr(aug, mode="r")
    r, h, g_out2 = r_aug[:, :n, :n], r_aug[:, :n, n], r_aug[:, n, n] ** 2
    lam, v = np.linalg.eigh(np.swapaxes(r, 1, 2) @ r)
    big = lam > eps
    c = np.einsum("skj,sk->sj", v, (np.swapaxes(r, 1, 2) @ h[..., None])[..., 0])  # V^T R^T h
    coef_big = np.where(big, c / np.where(big, lam, 1.0), 0.0)
    residual = h - (r @ (v @ coef_big[..., None]))[..., 0]
    dist2_top, best, rank = g_out2 + np.sum(residual**2, axis=1), g_out2.copy(), big.sum(axis=1)
    for m in np.flatnonzero(_needs_svd(r, lam, eps, max(b.shape[1:]))):
        dist2_top[m], best[m], rank[m] = _from_svd(r[m], h[m], g_out2[m], eps, max(b.shape[1:]))
    losses = np.sum(((b @ a[..., None])[..., 0] - g) ** 2, axis=1)
    a_norm = np.linalg.norm(a, axis=1)
    bounds = np.maximum(np.sqrt(dist2_top) - np.sqrt(eps) * a_norm, 0.0) ** 2
    return [
        BoundResult(float(bd), float(loss), float(bst), float(d), int(rk), float(an))
        for bd, loss, bst, d, rk, an in zip(bounds, losses, best, dist2_top, rank, a_norm)
    ]


def _needs_svd(r, lam: np.ndarray, eps: float, size: int) -> np.ndarray:
    """(S,): the models the Gram eigenpairs cannot serve. Their eigenvalues carry errors of
    ~1e-16 lambda_max, so R v_k / sqrt(lambda_k) is orthonormal to ~1e-16 lambda_max / lambda_k
    only: the eigen route is kept where eps is above 1e-6 lambda_max (errors below 1e-10 of the
    captured part); and the best loss is |g_out|^2 only where lstsq's cut-off drops no direction,
    which R's singular values (without vectors: a third of an SVD) decide."""
    s = np.linalg.svd(r, compute_uv=False)
    drops = (s <= s[:, :1] * size * np.finfo(np.float64).eps).any(axis=1)
    return drops | (eps < 1e-6 * lam[:, -1])


def _from_svd(r, h, g_out2: float, eps: float, size: int) -> tuple[float, float, int]:
    """dist(g, V_r)^2, the best loss and r of one model from the SVD of its R = U_R S V^T: the
    directions U_R (exactly orthonormal even where eps is below the eigenvalues' rounding) and the
    coefficients U_R^T h of g in them. Sums of squares only: no cancellation."""
    u_r, s, _ = np.linalg.svd(r)
    coef = u_r.T @ h
    drop = s <= s.max(initial=0.0) * size * np.finfo(np.float64).eps  # numpy.linalg.lstsq's cut-off
    small = s**2 <= eps
    return g_out2 + float(np.sum(coef[small] ** 2)), g_out2 + float(np.sum(coef[drop] ** 2)), int((~small).sum())


def lower_bounds_from_gram(eigenvalues, eigenvectors, projections, target_norm2, coef_norms, losses, eps: float):
    """The bound of :func:`loss_lower_bounds` from an eigendecomposition of the features' Gram
    matrix M = Phi^T W Phi itself, for a stack of S models (claim A3: the bound on the eps-rank's
    own Gram matrix, so r is exactly the eps-rank of those eigenvalues).

    eigenvalues (S, n) and eigenvectors (S, n, n) of M (``numpy.linalg.eigh``); projections (S, n):
    Phi^T W g for the target g; target_norm2 (S,): g^T W g; coef_norms (S,): ||a||; losses (S,): the
    loss sum_k w_k (Phi a - g)_k^2 of each model, computed from the features (the self-check
    compares the bound with it). With psi_k = Phi v_k (||psi_k||^2 = lambda_k),
    dist(g, V_r)^2 = g^T W g - sum_{lambda_k > eps} <g, psi_k>^2 / lambda_k: n x n work instead of a
    QR of the N x n features (4x less time here), accurate while dist^2 is not below ~1e-12 of g^T W g.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    c = np.einsum("skj,sk->sj", np.asarray(eigenvectors, dtype=np.float64), np.asarray(projections, dtype=np.float64))
    big = lam > eps
    captured = np.where(big, c * c / np.where(big, lam, 1.0), 0.0).sum(axis=1)
    dist2 = np.maximum(np.asarray(target_norm2, dtype=np.float64) - captured, 0.0)
    keep = lam > lam.max(axis=1, keepdims=True) * lam.shape[1] * np.finfo(np.float64).eps
    best = np.maximum(target_norm2 - np.where(keep, c * c / np.where(keep, lam, 1.0), 0.0).sum(axis=1), 0.0)
    bounds = np.maximum(np.sqrt(dist2) - np.sqrt(eps) * np.asarray(coef_norms, dtype=np.float64), 0.0) ** 2
    return [
        BoundResult(float(b), float(loss), float(bst), float(d), int(r), float(a))
        for b, loss, bst, d, r, a in zip(bounds, losses, best, dist2, big.sum(axis=1), coef_norms)
    ]


def eps_bounds_from_features(eigenvalues, eigenvectors, features, coefs, target, weights, eps: float):
    """Claim A3's bound for a stack of S models, from the eigendecomposition (``numpy.linalg.eigh``)
    of the Gram matrix of their last hidden layer on a quadrature: with the output
    u = b + sum_j a_j phi_j it bounds the squared L2 error sum_k w_k (u - u*)_k^2 from below by
    (dist(u* - b, V_r) - sqrt(eps) ||a||)_+^2, V_r spanned by the Gram eigen-directions above eps, so r
    is the eps-rank itself (:func:`lower_bounds_from_gram`). The error the self-check compares with is
    recomputed in float64 from the same features.

    features (S, N, n) float64 at the quadrature points; coefs (S, 1 + n): the output's bias, then its
    weights on the n features; target (N,): u* at the points; weights (N,) of the quadrature.
    """
    phi = np.asarray(features, dtype=np.float64)
    coef = np.asarray(coefs, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)[None, :] - coef[:, :1]  # u* - b
    residual = (phi @ coef[:, 1:, None])[..., 0] - target
    return lower_bounds_from_gram(
        eigenvalues,
        eigenvectors,
        (np.swapaxes(phi, 1, 2) @ (w * target)[..., None])[..., 0],
        (w * target * target).sum(axis=1),
        np.linalg.norm(coef[:, 1:], axis=1),
        (w * residual * residual).sum(axis=1),
        eps,
    )
