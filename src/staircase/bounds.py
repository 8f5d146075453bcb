"""A computable lower bound on the loss from the epsilon-rank of the features (DESIGN.md section 2).

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
    best_loss: float  # min over all coefficients: the best loss reachable with these features
    best_loss_top_r: float  # dist(f, V_r)^2: best loss using only the r top eigen-directions
    rank: int  # r = number of Gram eigenvalues above eps
    coef_norm: float  # ||a||


def loss_lower_bound(features, target, coef, weights, eps: float) -> BoundResult:
    """Lower bound on sum_k w_k (features @ coef - target)_k^2 for one model.

    features: (N, n) features (include the column of ones for a bias); target: (N,);
    coef: (n,) output-layer coefficients matching the columns; weights: (N,) quadrature weights.
    """
    phi = np.asarray(features, dtype=np.float64)
    f = np.asarray(target, dtype=np.float64).reshape(-1)
    a = np.asarray(coef, dtype=np.float64).reshape(-1)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    sw = np.sqrt(w)
    b = sw[:, None] * phi  # the quadrature norm becomes the Euclidean one
    g = sw * f
    m = b.T @ b
    lam, v = np.linalg.eigh(0.5 * (m + m.T))
    big = lam > eps
    # psi_k / ||psi_k|| for lambda_k > eps are orthonormal columns q_k = B v_k / sqrt(lambda_k);
    # the residual of the projection is formed explicitly (no cancellation in ||f||^2 - ||Pf||^2)
    q = (b @ v[:, big]) / np.sqrt(lam[big])
    dist2_top = float(np.sum((g - q @ (q.T @ g)) ** 2))
    # best loss over all coefficients: least squares in the Euclidean form (rank-revealing lstsq)
    sol, *_ = np.linalg.lstsq(b, g, rcond=None)
    best = float(np.sum((b @ sol - g) ** 2))
    a_norm = float(np.linalg.norm(a))
    bound = max(np.sqrt(dist2_top) - np.sqrt(eps) * a_norm, 0.0) ** 2
    return BoundResult(bound, best, dist2_top, int(big.sum()), a_norm)
