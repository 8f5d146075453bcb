"""Function fitting: least squares (MSE) regression of a known target on a uniform grid."""

from __future__ import annotations

import numpy as np

from staircase.lazytorch import no_grad, torch
from staircase.problems import BoundSystem, Task


class FittingTask(Task):
    """MSE fitting of ``exact`` on training points; the bound is taken in the loss's own
    quadrature (weights 1/N), so it is directly comparable with the logged loss. A mini-batch
    (``train.batch_size``) is a subset of the training points and their targets."""

    batched_keys = ("x", "y")

    def train_points(self) -> np.ndarray:
        raise NotImplementedError

    def train_arrays(self):
        x = self.train_points()
        return {"x": x, "y": self.exact(x)}

    def loss(self, model, data):
        return ((model(data["x"])[..., 0] - data["y"]) ** 2).mean(dim=-1)

    @no_grad
    def bound_system(self, model, data):
        _, hidden = model(data["x"], return_hidden=True)
        phi = hidden[-1].to(torch.float64).cpu().numpy()
        ones = np.ones(phi.shape[:-1] + (1,))
        coef = model.output_coefficients()
        n = phi.shape[1]
        return BoundSystem(
            features=np.concatenate([ones, phi], axis=-1),
            target=data["y"].to(torch.float64).cpu().numpy(),
            weights=np.full(n, 1.0 / n),
            coef=coef.detach().to(torch.float64).cpu().numpy(),
        )


class MultiFrequency1D(FittingTask):
    """f(x) = sum_k a_k sin(pi k x) on [-1, 1]: several frequencies, learned in stages
    (low frequencies first, the spectral bias of gradient training)."""

    d = 1
    bounds = [(-1.0, 1.0)]

    def __init__(
        self,
        frequencies,
        amplitudes,
        train_points: int,
        rank_points: int,
        rank_rule: str | None = None,
        error_points: int | None = None,
    ):
        super().__init__(frequencies=frequencies, amplitudes=amplitudes)
        if len(frequencies) != len(amplitudes):
            raise ValueError(
                f"task: {len(frequencies)} frequencies but {len(amplitudes)} amplitudes; "
                "give one amplitude per frequency"
            )
        self.frequencies = np.asarray(frequencies, dtype=float)
        self.amplitudes = np.asarray(amplitudes, dtype=float)
        self.n_train = train_points
        self.set_measurement_points(rank_points, rank_rule, error_points)

    def exact(self, x):
        x = np.asarray(x, dtype=float)[:, 0]
        return (self.amplitudes * np.sin(np.pi * np.outer(x, self.frequencies))).sum(axis=1)

    def train_points(self):
        return np.linspace(-1.0, 1.0, self.n_train)[:, None]

    def point_counts(self):
        return {"train": self.n_train, "rank": self.rank_point_count(), "error": self.n_error}
