"""Which hidden features a :class:`staircase.training.tracker.Tracker` measures, and how one forward
pass catches them.

The ``layers=`` of a Tracker names them, in order, as any of:

* modules of the model (their outputs are the features); the default of an ``nn.Sequential`` is
  :func:`sequential_layers`;
* module paths, as ``model.named_modules()`` spells them (``"blocks.0.act"``); a module that the
  forward pass runs more than once (one activation module shared by every layer) is named per
  call, ``"act#0"``, ``"act#1"``;
* one pattern string, ``*`` standing for one part of a module path: ``"blocks.*"`` is every block
  of a ``ModuleList`` (a block's output includes its residual sum);
* a function ``features(model, x)`` returning the features as a list of tensors, or a dict from
  name to tensor: for what no module outputs (``torch.tanh`` called inside ``forward``, a sum
  computed in ``forward``). The Tracker calls it under ``torch.no_grad`` in eval mode.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


class TrackerError(ValueError):
    """A Tracker argument that cannot work: the message is one line naming it."""


@dataclass(frozen=True)
class Layer:
    """One tracked module: its output at call ``call`` of a forward pass (None: it must run once)."""

    module: nn.Module
    call: int | None
    name: str


FeatureFunction = Callable[[nn.Module, torch.Tensor], "list[torch.Tensor] | dict[str, torch.Tensor]"]


def sequential_layers(model: nn.Module) -> list[nn.Module]:
    """The hidden layers of an ``nn.Sequential``: the module before every ``nn.Linear`` but the
    first, whose output that linear layer reads (``Linear, Tanh, Linear, Tanh, Linear``: both Tanh)."""
    if not isinstance(model, nn.Sequential):
        raise TrackerError(
            f"Tracker: a {type(model).__name__} is not an nn.Sequential: name its hidden features, layers=[...] "
            "(modules, module paths such as 'blocks.0.act', or a function features(model, x))"
        )
    mods = list(model)
    found = [mods[i - 1] for i, m in enumerate(mods) if isinstance(m, nn.Linear) and i > 0]
    if not found:
        raise TrackerError(
            "Tracker: this nn.Sequential has no nn.Linear reading a hidden layer; name them: layers=[...]"
        )
    return found


def sequential_head(model: nn.Module) -> nn.Module | None:
    """The output layer of an ``nn.Sequential`` ending in an ``nn.Linear`` with one output, else None."""
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[-1], nn.Linear):
        return model[-1] if model[-1].out_features == 1 else None
    return None


def is_feature_function(spec) -> bool:
    """A function of (model, points), not a module (modules are callable too)."""
    return callable(spec) and not isinstance(spec, nn.Module)


def module_name(model: nn.Module, module: nn.Module) -> str:
    """A readable name: the module path, with the class where the path is only indices ("3 (Tanh)")."""
    path = next((n for n, m in model.named_modules() if m is module), None)
    if path is None:
        return type(module).__name__
    return f"{path} ({type(module).__name__})" if re.fullmatch(r"[\d.]+", path) else path


def resolve(model: nn.Module, spec) -> list[Layer]:
    """The tracked layers of ``model`` from a ``layers=`` spec that is not a function (module docs)."""
    if spec is None:
        spec = sequential_layers(model)
    if isinstance(spec, str):
        return _matching(model, spec)
    if isinstance(spec, nn.Module) or not hasattr(spec, "__iter__"):
        raise TrackerError(
            f"Tracker: layers={spec!r}: give a list of modules or module paths, one pattern string, or a function"
        )
    return [_one_layer(model, item) for item in spec]


def _one_layer(model: nn.Module, item) -> Layer:
    if isinstance(item, nn.Module):
        if not any(m is item for m in model.modules()):
            raise TrackerError(f"Tracker: layers: the {type(item).__name__} given is not a module of the model")
        return Layer(item, None, module_name(model, item))
    if not isinstance(item, str):
        raise TrackerError(f"Tracker: layers: {item!r} is neither a module nor a module path")
    path, _, call = item.partition("#")
    if call and not call.isdigit():
        raise TrackerError(f"Tracker: layers: {item!r}: after '#' comes the call's number, e.g. 'act#1'")
    try:
        module = model.get_submodule(path)
    except AttributeError:
        known = ", ".join(n for n, _ in model.named_modules() if n)
        raise TrackerError(f"Tracker: layers: the model has no module {path!r} (it has: {known})") from None
    return Layer(module, int(call) if call else None, item)


def _matching(model: nn.Module, pattern: str) -> list[Layer]:
    """Every module whose path matches ``pattern`` (``*``: one part of a path), in the model's order."""
    regex = re.compile("\\.".join("[^.]+" if part == "*" else re.escape(part) for part in pattern.split(".")))
    found = [Layer(m, None, n) for n, m in model.named_modules() if n and regex.fullmatch(n)]
    if not found:
        raise TrackerError(f"Tracker: layers={pattern!r} matches no module path of the model")
    return found


def catch_outputs(model: nn.Module, layers: list[Layer], run: Callable[[], torch.Tensor]) -> tuple:
    """Call ``run()`` (the model's forward pass) with hooks on the tracked modules that exist for
    this call only; returns (the features in the order of ``layers``, run's output)."""
    wanted: dict[nn.Module, dict[int | None, int]] = {}
    for index, layer in enumerate(layers):
        wanted.setdefault(layer.module, {})[layer.call] = index
    caught: dict[int, torch.Tensor] = {}
    calls: dict[nn.Module, int] = {}

    def hook(module, args, output):  # returns None: a hook's return value would replace the output
        call = calls[module] = calls.get(module, -1) + 1
        by_call = wanted[module]
        if None in by_call and call > 0:
            name = layers[by_call[None]].name
            raise TrackerError(
                f"Tracker: tracked module {name!r} ran twice in one forward pass (a shared module): "
                f"name each call, layers=['{name}#0', '{name}#1', ...]"
            )
        index = by_call.get(None if None in by_call else call)
        if index is not None:
            caught[index] = output[0] if isinstance(output, tuple | list) else output

    handles = [m.register_forward_hook(hook) for m in wanted]
    try:
        out = run()
    finally:
        for h in handles:
            h.remove()
    missing = [layers[i].name for i in range(len(layers)) if i not in caught]
    if missing:
        raise TrackerError(f"Tracker: tracked layer(s) {missing} did not run in the model's forward pass")
    return [caught[i] for i in range(len(layers))], out


def call_feature_function(fn: FeatureFunction, model: nn.Module, x: torch.Tensor) -> tuple[list[str], list]:
    """(names, features) from a user's ``features(model, x)``: a list of tensors or a dict."""
    got = fn(model, x)
    if isinstance(got, dict):
        names, features = [str(k) for k in got], list(got.values())
    elif isinstance(got, list | tuple):
        names, features = [f"feature{i}" for i in range(len(got))], list(got)
    else:
        raise TrackerError(
            f"Tracker: layers function returned a {type(got).__name__}: return a list or dict of tensors"
        )
    if not features or not all(isinstance(f, torch.Tensor) for f in features):
        raise TrackerError("Tracker: layers function must return at least one tensor, and tensors only")
    return names, features


__all__ = [
    "FeatureFunction",
    "Layer",
    "TrackerError",
    "catch_outputs",
    "call_feature_function",
    "is_feature_function",
    "module_name",
    "resolve",
    "sequential_head",
    "sequential_layers",
]
