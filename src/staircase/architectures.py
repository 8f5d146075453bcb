"""Stacked architectures beyond the plain MLP, for the methods comparison (claim A6), and the
factory that builds any model from the ``model:`` section of a run config.

Every class keeps the model interface of ``staircase.models`` (``n_models``, ``depth``,
``forward(x, return_hidden)`` -> (S, N, d_out) and the hidden layers [(S, N, width)],
``output_coefficients()`` (S, width + 1)) and the stacking rules: weights carry a leading model
axis, and model s is initialised from its own ``torch.Generator(seed_s)`` so its initial weights
do not depend on its companions in the stack.

``model.architecture``
* ``mlp``: the plain fully connected network h_l = sigma(h_{l-1} W_l + b_l) (``StackedMLP``).
* ``resnet``: residual MLP. h_1 = sigma(x W_1 + b_1), then h_l = h_{l-1} + sigma(h_{l-1} W_l + b_l)
  for l = 2..depth (identity skip connections; all hidden layers have the same width).
* ``fourier``: random Fourier-feature embedding (Tancik et al. 2020) before a plain MLP:
  gamma(x) = [cos(2 pi x B), sin(2 pi x B)] with B (d, m) drawn N(0, sigma^2) per model and kept
  fixed (``model.fourier_features`` = m, ``model.fourier_sigma`` = sigma). The embedding is not a
  trained layer and not counted in ``depth``; the first hidden layer acts on gamma(x).
* ``modified_mlp``: the "modified MLP" of physics-informed learning (Wang, Teng, Perdikaris 2021,
  SIAM J. Sci. Comput.): two encoders U = sigma(x W_U + b_U), V = sigma(x W_V + b_V),
  h_1 = sigma(x W_1 + b_1), and for l = 2..depth: z_l = sigma(h_{l-1} W_l + b_l),
  h_l = (1 - z_l) * U + z_l * V. The hidden layers are h_1..h_depth.

``model.norm`` (mlp and resnet): the pre-activation is normalised before sigma,
h = sigma(gain * normalise(z) + shift), with trained gain (init 1) and shift (init 0) per neuron:
* ``layer``: over the neurons of each point (layer normalisation, Ba et al. 2016);
* ``batch``: over the points of the current forward call, per model and neuron (batch
  normalisation with full-batch statistics and no running averages: the network is a function of
  the point set it is evaluated on, so the rank quadrature sees statistics of the rank points, not
  of the training points; both are uniform over the domain).

``model.init`` chooses the initialisation (``staircase.methods``: default, xavier, kaiming,
structured). The default plain MLP is built by ``staircase.models.StackedMLP`` itself, so
existing experiments keep their exact numbers.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from staircase import methods
from staircase.models import StackedMLP

ARCHITECTURES = ("mlp", "resnet", "fourier", "modified_mlp")
NORMS = ("none", "layer", "batch")


class ConfigurableMLP(StackedMLP):
    """StackedMLP with a choice of initialisation, normalisation and residual connections."""

    residual = False

    def __init__(
        self,
        seeds,
        d_in: int,
        width: int,
        depth: int,
        activation: str,
        d_out: int = 1,
        dtype=torch.float32,
        init: str = "default",
        init_scale: float = 1.0,
        bounds=None,
        norm: str = "none",
    ):
        super().__init__(seeds, d_in, width, depth, activation, d_out=d_out, dtype=dtype)
        if norm not in NORMS:
            raise ValueError(f"model.norm: unknown normalisation {norm!r}; choose one of {list(NORMS)}")
        if init == "structured" and bounds is None:
            raise ValueError("model.init: structured init needs the domain bounds")
        self.init, self.init_scale, self.bounds, self.norm = init, float(init_scale), bounds, norm
        self.norm_gain = nn.ParameterList()
        self.norm_shift = nn.ParameterList()
        if norm != "none":
            for _ in range(depth):
                self.norm_gain.append(nn.Parameter(torch.ones(self.n_models, 1, width, dtype=dtype)))
                self.norm_shift.append(nn.Parameter(torch.zeros(self.n_models, 1, width, dtype=dtype)))
        self.reset_parameters()

    def _extra_init(self, s: int, gen: torch.Generator) -> None:
        """Subclasses draw their extra parameters here, after the layers, from the same generator."""

    @torch.no_grad()
    def reset_parameters(self):
        if not hasattr(self, "init"):  # called by StackedMLP.__init__ before our settings exist
            return
        for s, seed in enumerate(self.seeds):
            gen = torch.Generator().manual_seed(seed)
            for l, (w, b) in enumerate(zip(self.weights, self.biases)):
                w0, b0 = methods.init_linear(w.shape[1], w.shape[2], self.init, gen)
                if l == 0 and self.init == "structured":
                    w0, b0 = methods.structured_first_layer(w.shape[2], self.bounds, gen, seed, self.init_scale)
                w[s].copy_(w0)
                b[s].copy_(b0)
            self._extra_init(s, gen)

    def _normalise(self, l: int, z: torch.Tensor) -> torch.Tensor:
        if self.norm == "none":
            return z
        dim = -1 if self.norm == "layer" else -2
        mean = z.mean(dim=dim, keepdim=True)
        var = z.var(dim=dim, keepdim=True, unbiased=False)
        return self.norm_gain[l] * (z - mean) / torch.sqrt(var + 1e-5) + self.norm_shift[l]

    def _layer(self, l: int, h: torch.Tensor) -> torch.Tensor:
        return self.act.fn(self._normalise(l, torch.baddbmm(self.biases[l], h, self.weights[l])))

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def first_layer_parameters(self):
        return [self.weights[0], self.biases[0]]

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        h = x.expand(self.n_models, *x.shape) if x.dim() == 2 else x
        h = self._embed(h)
        hidden = []
        for l in range(self.depth):
            z = self._layer(l, h)
            h = h + z if (self.residual and l > 0) else z
            hidden.append(h)
        out = torch.baddbmm(self.biases[-1], h, self.weights[-1])
        return (out, hidden) if return_hidden else out


class StackedResMLP(ConfigurableMLP):
    """Residual MLP: identity skip connections around every hidden layer after the first."""

    residual = True


class StackedFourierMLP(ConfigurableMLP):
    """A plain MLP on the random Fourier features [cos(2 pi x B), sin(2 pi x B)] of the input."""

    def __init__(self, seeds, d_in, width, depth, activation, n_features: int = 32, sigma: float = 1.0, **kw):
        self.n_features, self.sigma = int(n_features), float(sigma)
        super().__init__(seeds, 2 * self.n_features, width, depth, activation, **kw)
        self.d_in = d_in
        dtype = self.weights[0].dtype
        self.register_buffer("fourier_b", torch.empty(self.n_models, d_in, self.n_features, dtype=dtype))
        self.reset_parameters()

    def _extra_init(self, s, gen):
        if hasattr(self, "fourier_b"):
            b = torch.randn((self.fourier_b.shape[1], self.n_features), generator=gen, dtype=torch.float64)
            self.fourier_b[s].copy_(self.sigma * b)

    def _embed(self, x):
        z = 2 * math.pi * torch.bmm(x, self.fourier_b)
        return torch.cat([torch.cos(z), torch.sin(z)], dim=-1)


class StackedModifiedMLP(ConfigurableMLP):
    """The modified MLP: hidden layers mix two encoders U, V of the input through gates z_l."""

    def __init__(self, seeds, d_in, width, depth, activation, norm: str = "none", **kw):
        if norm != "none":
            raise ValueError("model.norm: the modified MLP takes no normalisation")
        super().__init__(seeds, d_in, width, depth, activation, **kw)
        dtype = self.weights[0].dtype
        self.enc_weights = nn.ParameterList(
            [nn.Parameter(torch.empty(self.n_models, d_in, width, dtype=dtype)) for _ in range(2)]
        )
        self.enc_biases = nn.ParameterList(
            [nn.Parameter(torch.empty(self.n_models, 1, width, dtype=dtype)) for _ in range(2)]
        )
        self.reset_parameters()

    def _extra_init(self, s, gen):
        if hasattr(self, "enc_weights"):
            for w, b in zip(self.enc_weights, self.enc_biases):
                w0, b0 = methods.init_linear(
                    w.shape[1], w.shape[2], "default" if self.init == "structured" else self.init, gen
                )
                w[s].copy_(w0)
                b[s].copy_(b0)

    def forward(self, x, return_hidden=False):
        x = x.expand(self.n_models, *x.shape) if x.dim() == 2 else x
        u = self.act.fn(torch.baddbmm(self.enc_biases[0], x, self.enc_weights[0]))
        v = self.act.fn(torch.baddbmm(self.enc_biases[1], x, self.enc_weights[1]))
        h = self._layer(0, x)
        hidden = [h]
        for l in range(1, self.depth):
            z = self._layer(l, h)
            h = (1 - z) * u + z * v
            hidden.append(h)
        out = torch.baddbmm(self.biases[-1], h, self.weights[-1])
        return (out, hidden) if return_hidden else out


def build_model(model_cfg: dict, seeds, d_in: int, bounds, dtype=torch.float32) -> nn.Module:
    """The stacked model a run config's ``model:`` section describes."""
    arch = model_cfg.get("architecture", "mlp")
    init = model_cfg.get("init", "default")
    norm = model_cfg.get("norm", "none")
    args = (seeds, d_in, model_cfg["width"], model_cfg["depth"], model_cfg["activation"])
    kw = dict(dtype=dtype, init=init, init_scale=model_cfg.get("init_scale", 1.0), bounds=bounds, norm=norm)
    if arch == "mlp":
        if init == "default" and norm == "none":
            return StackedMLP(*args, dtype=dtype)
        return ConfigurableMLP(*args, **kw)
    if arch == "resnet":
        return StackedResMLP(*args, **kw)
    if arch == "fourier":
        return StackedFourierMLP(
            *args, n_features=model_cfg.get("fourier_features", 32), sigma=model_cfg.get("fourier_sigma", 1.0), **kw
        )
    if arch == "modified_mlp":
        return StackedModifiedMLP(*args, **kw)
    raise ValueError(f"model.architecture: unknown architecture {arch!r}; choose one of {list(ARCHITECTURES)}")
