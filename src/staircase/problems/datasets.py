"""Offline data sets for papers B and C: scikit-learn's bundled digits and synthetic Gaussian sets.

Every generator returns ``(x, y)`` as numpy arrays: ``x`` float64 of shape (N, d), ``y`` int64 class
labels 0..K-1 (paper B) or +-1 (paper C, binary). Randomness comes only from the ``seed`` argument
(the data seed, separate from the model seeds), so a data set is the same in every job.

* ``digits``            - the 8x8 digits (1797 images, 10 classes), an optional class-balanced subset
* ``gaussian_mixture``  - K classes, means ``radius * u_k`` with u_k random unit vectors, and
  x = mean + noise * xi, xi ~ N(0, I_d). For a list of noise levels the *same* xi are used at every
  level (common random numbers), so the levels differ only in the within-class spread, whose root
  mean square distance to the class mean is noise * sqrt(d).
* ``digits01``          - digits 0 vs 1 (360 images), labels -1 / +1
* ``separable_gaussian``- x ~ N(0, I_d) labelled by sign(<w*, x>), keeping only points with
  |<w*, x>| >= margin, so that w* separates the set with margin at least ``margin``.

``centre_and_scale`` centres the features and scales them to a given root mean square norm (bias-free
networks need centred inputs; a common factor keeps separability and the class structure).
"""

from __future__ import annotations

import numpy as np


def centre_and_scale(x: np.ndarray, rms_norm: float) -> np.ndarray:
    """Subtract the feature means, then scale so that sqrt(mean_i ||x_i||^2) = rms_norm."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    rms = np.sqrt((x**2).sum(axis=1).mean())
    return x * (rms_norm / rms) if rms > 0 else x


def digits(train_points: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The digits (10 classes); with ``train_points`` a class-balanced random subset of that size."""
    # scikit-learn on demand: its import costs about 1.3 s of CPU, and every job (and every
    # `staircase` command) imports this module through the config checks, while only papers B and
    # C's digits studies need it
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    if train_points is not None and train_points < len(y):
        from sklearn.model_selection import train_test_split

        x, _, y, _ = train_test_split(x, y, train_size=train_points, stratify=y, random_state=seed)
        order = np.argsort(y, kind="stable")
        x, y = x[order], y[order]
    return x.astype(np.float64), y.astype(np.int64)


def gaussian_mixture(
    classes: int, dim: int, per_class: int, radius: float, noise, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """K Gaussian classes; ``noise`` a float -> x (N, d), or a sequence -> x (len(noise), N, d)
    with the same class means and the same standard normal draws at every level."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim))
    means *= radius / np.linalg.norm(means, axis=1, keepdims=True)
    y = np.repeat(np.arange(classes), per_class)
    xi = rng.standard_normal((len(y), dim))
    levels = np.asarray(noise, dtype=np.float64)
    x = means[y] + levels.reshape(-1, 1, 1) * xi
    return (x if levels.ndim else x[0]), y.astype(np.int64)


def digits01() -> tuple[np.ndarray, np.ndarray]:
    """Digits 0 (label -1) and 1 (label +1)."""
    from sklearn.datasets import load_digits  # on demand, as in `digits`

    x, y = load_digits(n_class=2, return_X_y=True)
    return x.astype(np.float64), np.where(y == 1, 1, -1).astype(np.int64)


def separable_gaussian(dim: int, points: int, margin: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``points`` draws of N(0, I_d) with |<w*, x>| >= margin (rejection), labelled sign(<w*, x>);
    returns x, y. The unit normal w* is ``separating_direction(dim, seed)``."""
    rng = np.random.default_rng(seed)
    w = separating_direction(dim, seed)
    kept = []
    n = 0
    while n < points:
        x = rng.standard_normal((2 * points, dim))
        x = x[np.abs(x @ w) >= margin]
        kept.append(x)
        n += len(x)
    x = np.concatenate(kept)[:points]
    return x, np.where(x @ w > 0, 1, -1).astype(np.int64)


def separating_direction(dim: int, seed: int = 0) -> np.ndarray:
    w = np.random.default_rng([seed, 1]).standard_normal(dim)
    return w / np.linalg.norm(w)


def class_count(y: np.ndarray) -> int:
    return int(np.unique(y).size)


# a data block's keys that are not generator parameters: the data set's name and its scaling
DATA_EXTRA = ("name", "rms_norm")


def data_params(cfg: dict) -> dict:
    """The generator parameters of a study's data block."""
    return {k: v for k, v in cfg["data"].items() if k not in DATA_EXTRA}
