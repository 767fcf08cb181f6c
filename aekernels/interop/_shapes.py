"""Result shapes for the adapters, from the NumPy API itself (no shape maths here).

Framework adapters must know a kernel's result shape before running it (torch fake
tensors, ``jax.pure_callback``'s result spec).  Rather than re-derive the output-size
rules, :func:`dry_run` calls the public kernel on zero-batch stand-ins: ``_api``
validates every argument and computes the result shape, and an empty batch (N == 0)
returns an empty result without running a kernel.  So the shapes, and the errors for
bad arguments, are exactly the NumPy API's.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np


class Spec(NamedTuple):
    """Stand-in for an array argument: its shape, NumPy dtype, and whether axis 0 is the batch."""
    shape: tuple
    dtype: Any
    batched: bool = True


def _stand_in(spec: Spec) -> tuple[np.ndarray, bool]:
    shape = tuple(int(d) for d in spec.shape)
    if not spec.batched:
        return np.empty(shape, spec.dtype), False
    if len(shape) == 3:            # a batch of one without the N axis: add an empty one
        return np.empty((0,) + shape, spec.dtype), True
    if len(shape) == 4:
        return np.empty((0,) + shape[1:], spec.dtype), False
    # Wrong rank: _api refuses it; show the real shape in the message when that is cheap.
    small = np.prod(shape, dtype=np.float64) * np.dtype(spec.dtype).itemsize <= 2**26
    return np.empty(shape if small else (0,) + shape[1:], spec.dtype), False


def dry_run(fn: Callable[..., Any], batch: Any, args: Sequence[Any],
            kwargs: dict | None = None) -> tuple[tuple, ...]:
    """Shapes of ``fn(*args, **kwargs)``'s batched results, without computing them.

    Parameters
    ----------
    fn : callable
        A public aekernels kernel whose results are all batched (data-shaped).
    batch : int-like
        The real batch size (may be a symbolic size); it replaces the empty batch.
    args : sequence
        Arguments, with :class:`Spec` in place of arrays.
    kwargs : dict, optional

    Returns
    -------
    tuple of tuple
        One shape per result (a 3-D input gives 3-D shapes, as the kernel would).
    """
    squeeze = False
    real = []
    for a in args:
        if isinstance(a, Spec):
            arr, sq = _stand_in(a)
            squeeze |= sq
            real.append(arr)
        else:
            real.append(a)
    out = fn(*real, **(kwargs or {}))
    results = out if isinstance(out, tuple) else (out,)
    shapes = []
    for r in results:
        shapes.append(tuple(r.shape[1:]) if squeeze else (batch,) + tuple(r.shape[1:]))
    return tuple(shapes)


def pads4(padding: Any) -> tuple[str, list[int]]:
    """(mode, [top, bottom, left, right]) for a padding argument; errors as ``_api``'s.

    ``mode`` is the padding string ("valid", "same", ...) or ``"explicit"``.
    """
    from .._api import _padding

    p = _padding(padding)
    if isinstance(p, str):
        return p, []
    (t, b), (l, r) = p
    return "explicit", [t, b, l, r]


def unpads4(mode: str, pads: Sequence[int]) -> Any:
    """Inverse of :func:`pads4`: the padding argument for the NumPy API."""
    if mode != "explicit":
        return mode
    t, b, l, r = (int(v) for v in pads)
    return ((t, b), (l, r))
