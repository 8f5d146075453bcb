"""Stacked architectures beyond the plain MLP, for the methods comparison (claim A6), and the
factory that builds any model from the ``model:`` section of a run config.

Every class keeps the model interface of ``staircase.networks.mlp`` (``n_models``, ``depth``,
``forward(x, return_hidden)`` -> (S, N, d_out) and the hidden layers [(S, N, width)],
``output_coefficients()`` (S, width + 1)) and the stacking rules: weights carry a leading model
axis, and model s is initialised from its own ``torch.Generator(seed_s)`` so its initial weights
do not depend on its companions in the stack. Each also has an exact ``forward_laplacian`` (for
PDE losses): its forward pass is written once on ``Jet`` values (``staircase.networks.forward_laplacian``),
which carry the input gradient and Laplacian along when asked to.

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
* ``layer``: over the neurons of each point (layer normalisation, Ba et al. 2016), eps 1e-5;
* ``batch``: over the points of the current forward call, per model and neuron (batch
  normalisation with full-batch statistics and no running averages), eps 1e-5. The network is then
  a function of the point set it is evaluated on: the rank quadrature sees statistics of the rank
  points, not of the training points (both uniform over the domain), and input derivatives treat
  the statistics of the point set as constants. Not for PDE tasks, whose interior and boundary
  points would be normalised with different statistics.

``model.init`` chooses the initialisation (``staircase.training.methods``: default, xavier, kaiming,
structured). The default plain MLP is built by ``staircase.networks.mlp.StackedMLP`` itself, so
existing experiments keep their exact numbers.

``model.init_gain`` (default 1: nothing changes) multiplies every initial weight **and bias** of
every trained linear layer by the same factor after the initialisation above: the hidden layers,
the output layer and the modified MLP's two encoders (:func:`scale_initial_weights`). It does not
touch the normalisation's gains and shifts (they set the scale the normalisation restores) or the
Fourier embedding's fixed frequencies (not trained). A small gain (0.1, 0.01) puts training near the
saddle at the origin: the small-initialisation ("saddle-to-saddle") regime of the regime map.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from staircase.networks import init as weight_init
from staircase.networks.forward_laplacian import Jet
from staircase.networks.mlp import StackedMLP
from staircase.problems.operators import Derivatives

ARCHITECTURES = ("mlp", "resnet", "fourier", "modified_mlp")
NORMS = ("none", "layer", "batch")
NORM_EPS = 1e-5


def _rsqrt_d1(t):
    return -0.5 * t**-1.5


def _rsqrt_d2(t):
    return 0.75 * t**-2.5


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

    def reset_parameters(self):
        if not hasattr(self, "init"):  # called by StackedMLP.__init__ before our settings exist
            return
        super().reset_parameters()

    def _init_model(self, s: int, seed: int, gen: torch.Generator) -> None:
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            w0, b0 = weight_init.init_linear(w.shape[1], w.shape[2], self.init, gen)
            if l == 0 and self.init == "structured":
                w0, b0 = weight_init.structured_first_layer(w.shape[2], self.bounds, gen, seed, self.init_scale)
            w[s].copy_(w0)
            b[s].copy_(b0)
        self._extra_init(s, gen)

    def first_layer_parameters(self):
        return [self.weights[0], self.biases[0]]

    # ---- the forward pass, once, on jets ----------------------------------------------------
    def _normalise(self, l: int, z: Jet) -> Jet:
        if self.norm == "none":
            return z
        gain, shift = self.norm_gain[l], self.norm_shift[l]
        if self.norm == "batch":  # statistics of the point set: constants at each point
            mean = z.v.mean(dim=-2, keepdim=True)
            r = torch.rsqrt(z.v.var(dim=-2, keepdim=True, unbiased=False) + NORM_EPS)
            return z.affine(gain * r, shift - gain * r * mean)
        c = z - z.mean_last()  # layer norm: statistics over the neurons of each point
        var = (c * c).mean_last().plus(NORM_EPS)
        return (c * var.map(torch.rsqrt, _rsqrt_d1, _rsqrt_d2)).affine(gain, shift)

    def _layer(self, l: int, h: Jet) -> Jet:
        return self._normalise(l, h.linear(self.weights[l], self.biases[l])).act(self.act)

    def _embed(self, x: Jet) -> Jet:
        return x

    def _hidden(self, x: Jet) -> list[Jet]:
        h = self._embed(x)
        hidden = []
        for l in range(self.depth):
            z = self._layer(l, h)
            h = h + z if (self.residual and l > 0) else z
            hidden.append(h)
        return hidden

    def _run(self, x: torch.Tensor, derivatives: bool) -> tuple[Jet, list[Jet]]:
        hidden = self._hidden(Jet.input(self.stack_input(x), derivatives))
        return hidden[-1].linear(self.weights[-1], self.biases[-1]), hidden

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        out, hidden = self._run(x, derivatives=False)
        return (out.v, [h.v for h in hidden]) if return_hidden else out.v

    def forward_laplacian(self, x: torch.Tensor) -> Derivatives:
        """Exact input gradient and Laplacian of the output and every hidden layer."""
        out, hidden = self._run(x, derivatives=True)
        return Derivatives(out.v, out.g, out.l, [h.v for h in hidden], [h.l for h in hidden])


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
        z = x.linear(2 * math.pi * self.fourier_b)
        neg_cos = lambda t: -torch.cos(t)  # noqa: E731
        neg_sin = lambda t: -torch.sin(t)  # noqa: E731
        return Jet.cat([z.map(torch.cos, neg_sin, neg_cos), z.map(torch.sin, torch.cos, neg_sin)])


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
            scheme = "default" if self.init == "structured" else self.init
            for w, b in zip(self.enc_weights, self.enc_biases):
                w0, b0 = weight_init.init_linear(w.shape[1], w.shape[2], scheme, gen)
                w[s].copy_(w0)
                b[s].copy_(b0)

    def _hidden(self, x):
        u = x.linear(self.enc_weights[0], self.enc_biases[0]).act(self.act)
        v = x.linear(self.enc_weights[1], self.enc_biases[1]).act(self.act)
        h = self._layer(0, x)
        hidden = [h]
        for l in range(1, self.depth):
            h = u + self._layer(l, h) * (v - u)  # (1 - z) U + z V
            hidden.append(h)
        return hidden


INITIAL_PARAMETERS = ("weights", "biases", "enc_weights", "enc_biases")  # what model.init_gain scales


@torch.no_grad()
def scale_initial_weights(model: nn.Module, gain: float) -> None:
    """Multiply every weight and bias of the model's trained linear layers by ``gain`` (see the
    module docstring, ``model.init_gain``). Elementwise, so each stacked model is scaled alone."""
    for name in INITIAL_PARAMETERS:
        for p in getattr(model, name, ()):
            p.mul_(gain)


def build_model(model_cfg: dict, seeds, d_in: int, bounds, dtype=torch.float32) -> nn.Module:
    """The stacked model a run config's ``model:`` section describes (with ``init_gain`` applied)."""
    model = _build(model_cfg, seeds, d_in, bounds, dtype)
    gain = float(model_cfg.get("init_gain", 1.0))
    if gain != 1.0:
        scale_initial_weights(model, gain)
    return model


def _build(model_cfg: dict, seeds, d_in: int, bounds, dtype) -> nn.Module:
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
