"""Layer protocol and Sequential.

Every layer has ``forward(x) -> y`` and ``backward(grad) -> grad_input``.  Parameters
and their gradients are arrays returned by ``params()`` and ``grads()`` (same order,
same shapes); ``backward`` *writes* the gradients into those arrays (it does not
accumulate), and optimisers update the parameters in place, so the arrays a layer
holds are the arrays an optimiser sees (``flatten_parameters`` may move them all into
one contiguous buffer, as views, so an optimiser step is a few whole-buffer ops).

Ownership rule that lets layers avoid copies: ``backward(grad)`` may overwrite
``grad`` (it was produced by the layer above for this layer only), and a layer built
with ``inplace=True`` may overwrite its forward input.  Pass copies when you need the
originals afterwards (the gradient-check tests do).
"""
from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np


class Layer:
    """Base class: stateless identity with no parameters."""

    #: attribute names of the parameters and of their gradients (same order)
    _param_names: tuple[str, ...] = ()
    _grad_names: tuple[str, ...] = ()
    #: attribute names of non-trained state that is saved (e.g. BatchNorm running stats)
    _buffer_names: tuple[str, ...] = ()

    training: bool = True
    #: False skips computing the input gradient (the first layer of a network)
    need_input_grad: bool = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad

    __call__ = forward

    def params(self) -> list[np.ndarray]:
        return [getattr(self, n) for n in self._param_names]

    def grads(self) -> list[np.ndarray]:
        return [getattr(self, n) for n in self._grad_names]

    def buffers(self) -> list[np.ndarray]:
        return [getattr(self, n) for n in self._buffer_names]

    def layers(self) -> Iterator["Layer"]:
        """This layer and, for containers, every layer inside (depth first)."""
        yield self

    def train(self, mode: bool = True) -> "Layer":
        for layer in self.layers():
            layer.training = mode
        return self

    def eval(self) -> "Layer":
        return self.train(False)

    def zero_grad(self) -> None:
        for g in self.grads():
            g[...] = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sequential(Layer):
    """Layers applied in order; backward in reverse order."""

    def __init__(self, *layers: Layer) -> None:
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.children: list[Layer] = list(layers)
        self._steps: list[Layer] = []           # what the latest forward ran, in order
        self._steps_of: list[Layer] = []        # the children it was built from

    def _execution_steps(self) -> list[Layer]:
        """The children, with each ReLU that directly precedes a MaxPool2d fused into
        one step that pools first (see ``pool.PoolThenReLU``); rebuilt when the children change."""
        if self._steps_of != self.children:
            from .pool import fuse_relu_max_pool   # pool imports this module
            self._steps_of = list(self.children)
            self._steps = fuse_relu_max_pool(self._steps_of)
        return self._steps

    def forward(self, x: np.ndarray) -> np.ndarray:
        for step in self._execution_steps():
            x = step.forward(x)
        return x

    __call__ = forward

    def backward(self, grad: np.ndarray) -> np.ndarray:
        for step in reversed(self._execution_steps()):
            grad = step.backward(grad)
            if grad is None:        # the layers below need no gradient (need_input_grad)
                return None
        return grad

    def params(self) -> list[np.ndarray]:
        return [p for layer in self.children for p in layer.params()]

    def grads(self) -> list[np.ndarray]:
        return [g for layer in self.children for g in layer.grads()]

    def buffers(self) -> list[np.ndarray]:
        return [b for layer in self.children for b in layer.buffers()]

    def layers(self) -> Iterator[Layer]:
        yield self
        for layer in self.children:
            yield from layer.layers()

    @property
    def need_input_grad(self) -> bool:  # type: ignore[override]
        return self.children[0].need_input_grad if self.children else True

    @need_input_grad.setter
    def need_input_grad(self, value: bool) -> None:
        if self.children:
            self.children[0].need_input_grad = value

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(*self.children[i])
        return self.children[i]

    def __len__(self) -> int:
        return len(self.children)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.children)

    def append(self, layer: Layer) -> "Sequential":
        self.children.append(layer)
        return self

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.children))
        return f"Sequential(\n{inner}\n)"


def flatten_parameters(layers: Iterable[Layer], dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """Move every parameter and gradient of ``layers`` into two flat buffers.

    Each layer's parameter/gradient attributes become views into the buffers (values
    kept), so an optimiser can update all parameters with a few whole-buffer
    operations instead of a Python loop over many small arrays.

    Returns
    -------
    (params, grads) : two 1-D arrays of equal size.
    """
    owners = []
    seen: set[int] = set()
    for top in layers:
        for layer in top.layers():
            if layer._param_names and id(layer) not in seen:
                seen.add(id(layer))
                owners.append(layer)
    arrays = [getattr(l, n) for l in owners for n in l._param_names]
    if not arrays:
        dt = np.dtype(dtype or np.float32)
        return np.zeros(0, dt), np.zeros(0, dt)
    dt = np.dtype(dtype or arrays[0].dtype)
    total = sum(a.size for a in arrays)
    flat_p = np.empty(total, dt)
    flat_g = np.zeros(total, dt)
    offset = 0
    for layer in owners:
        for pn, gn in zip(layer._param_names, layer._grad_names):
            p = getattr(layer, pn)
            view_p = flat_p[offset:offset + p.size].reshape(p.shape)
            view_p[...] = p
            setattr(layer, pn, view_p)
            setattr(layer, gn, flat_g[offset:offset + p.size].reshape(p.shape))
            offset += p.size
    return flat_p, flat_g


def count_params(layer: Layer) -> int:
    return int(sum(p.size for p in layer.params()))


def _as_tuple(v, n: int = 2) -> tuple:
    if isinstance(v, (tuple, list)):
        return tuple(v)
    return (v,) * n


def as_float(x: np.ndarray, dtype) -> np.ndarray:
    """``x`` in ``dtype``, without copying when it already is."""
    return np.asarray(x, dtype=dtype)


__all__ = ["Layer", "Sequential", "flatten_parameters", "count_params"]


def iter_layers(layers: Sequence[Layer]) -> Iterator[Layer]:
    for top in layers:
        yield from top.layers()
