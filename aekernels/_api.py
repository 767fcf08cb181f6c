"""The public kernels: argument checking and output-shape arithmetic, done once here.

Both backends (native, numba) receive only what this module has validated, so the
semantics and the errors are identical whichever backend runs.  Rules, beyond
``API.md``:

* Arrays: anything NumPy can view (ndarray, buffer protocol, ``__array_interface__``,
  ``__dlpack__``).  dtypes float32/float64 in native byte order; every float argument
  of one call has the same dtype (``TypeError`` naming the argument otherwise;
  big-endian, float16, int, bool, complex and object arrays are refused).
  Non-contiguous, negative-stride, Fortran-order, unaligned or read-only inputs are
  accepted and copied once.  Pooling indices are int64 (any other dtype: TypeError).
* Ranks: data is 4-D, or 3-D meaning a batch of one (the result is then 3-D).
  Weights are 4-D; bias is 1-D with one entry per output channel.
* An empty batch (N == 0) gives an empty result of the right shape.  Any other zero
  extent (channels, height, width, kernel) is a ValueError.
* Integer arithmetic is Python's (no overflow); every extent must be < 2**31 and
  every array < 2**62 elements (ValueError), and allocation failure is MemoryError.
* ``stride``/``dilation``/``kernel_size``/``scale_factor``: int or (h, w) pair of ints
  >= 1 (bool is not an int here).  ``padding``: int, (h, w), ((top, bottom),
  (left, right)), "valid", "same" (extra row/col at bottom/right, as TF/ONNX
  SAME_UPPER), "same_lower" (extra at top/left); case-insensitive.
* Pooling: ``stride=None`` means ``kernel_size``; every window must overlap the
  image (ValueError naming ``padding`` otherwise), so max pooling always has an
  in-image candidate and the average-pool divisor is never 0.
* ``out=``: an ndarray of exactly the result's shape and dtype, C-contiguous,
  writeable, aligned, not overlapping any input.  For ``max_pool2d`` it receives the
  values (indices are always freshly allocated).  All checks happen before any
  kernel runs, so a refused call writes nothing to ``out``.
* ``conv_transpose2d`` (the adjoint of the forward conv whose weight it takes):
  output = (H-1)*stride - pad_top - pad_bottom + dilation*(k-1) + 1 + output_padding,
  with 0 <= output_padding < max(stride, dilation).  ``output_size`` ((H, W) or a
  full shape) picks output_padding instead.  ``padding="same"`` means the output is
  ``output_size`` or H*stride (as TF), padded as the forward "same" conv of that size
  (output_padding must then be 0).
* ``max_unpool2d``: ``output_size`` ((H, W) or a full shape) must lie strictly
  within ``default +- stride`` per dimension, as in PyTorch.
"""
from __future__ import annotations

import math
import operator
import sys
from typing import Any, NamedTuple, Sequence

import numpy as np

from ._dispatch import index_check, kernels

__all__ = [
    "conv2d", "conv2d_backward_input", "conv2d_backward_filter", "conv2d_backward_bias",
    "conv_transpose2d", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
    "avg_pool2d_backward", "max_unpool2d", "max_unpool2d_backward",
    "upsample_nearest2d", "upsample_nearest2d_backward",
]

MAX_EXTENT = 2**31 - 1      # every extent, padding, stride... (native code indexes in int64)
MAX_ELEMENTS = 2**62        # per array
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INDEX = np.dtype(np.int64)

# ---------------------------------------------------------------------------------
# arrays


def _as_ndarray(obj: Any, name: str) -> np.ndarray:
    """View ``obj`` as an ndarray without copying when it can be viewed."""
    if isinstance(obj, np.ndarray):
        return obj
    if hasattr(obj, "__dlpack__") and not hasattr(obj, "__array_interface__"):
        try:
            return np.from_dlpack(obj)
        except Exception:
            pass  # e.g. a device array: let __array__ try below
    try:
        return np.asarray(obj)
    except Exception as exc:
        raise TypeError(f"{name}: cannot be viewed as a NumPy array ({exc})") from None


def _float_array(obj: Any, name: str, dtype: np.dtype | None = None) -> np.ndarray:
    """A float32/float64, C-contiguous, aligned, native-endian array (copied only if needed)."""
    a = _as_ndarray(obj, name)
    dt = a.dtype
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        raise TypeError(f"{name} must be float32 or float64, got dtype {dt}")
    if not dt.isnative:
        raise TypeError(f"{name} must be in native byte order, got big-endian dtype {dt.str!r} "
                        f"(convert with .astype({dt.newbyteorder('=').name!r}))")
    if dtype is not None and dt != dtype:
        raise TypeError(f"{name} must have the same dtype as the data ({dtype}), got {dt}")
    return _contiguous(a)


def _index_array(obj: Any, name: str) -> np.ndarray:
    a = _as_ndarray(obj, name)
    if a.dtype != _INDEX:
        raise TypeError(f"{name} must be int64 (native byte order), got dtype {a.dtype}")
    return _contiguous(a)


def _contiguous(a: np.ndarray) -> np.ndarray:
    if a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.require(a, requirements=("C", "A"))


def _check_ndim(a: np.ndarray, name: str, ndims: Sequence[int]) -> None:
    if a.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} must be {want}, got a {a.ndim}-D array of shape {a.shape}")


def _batched(a: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    """Accept (N,C,H,W)/(N,H,W,C) or a batch of one without the N axis."""
    _check_ndim(a, name, (3, 4))
    return (a[None], True) if a.ndim == 3 else (a, False)


def _shape_arg(shape: Any, name: str, ndims: Sequence[int] = (3, 4)) -> tuple[int, ...]:
    try:
        dims = tuple(_int(v, name) for v in shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints, got {shape!r}") from None
    if len(dims) not in ndims:
        want = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{name} must have {want} entries, got {shape!r}")
    for d in dims:
        if d < 0 or d > MAX_EXTENT:
            raise ValueError(f"{name} entries must be in [0, 2**31), got {shape!r}")
    return dims


def _check_elements(shape: Sequence[int], name: str) -> None:
    if any(d > MAX_EXTENT for d in shape) or math.prod(shape) >= MAX_ELEMENTS:
        raise ValueError(f"{name} of shape {tuple(shape)} is too large "
                         "(extents must be < 2**31 and the array < 2**62 elements)")


def _result(out: Any, shape: tuple[int, ...], dtype: np.dtype, inputs: Sequence[np.ndarray | None],
            name: str = "out") -> np.ndarray:
    """Validate a user's ``out=`` array, or allocate the result."""
    _check_elements(shape, "result")
    if math.prod(shape) * dtype.itemsize >= MAX_ELEMENTS:
        raise ValueError(f"result of shape {tuple(shape)} and dtype {dtype} is too large "
                         "(2**62 bytes or more)")
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not (out.flags.c_contiguous and out.flags.aligned):
        raise ValueError(f"{name} must be C-contiguous and aligned")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    for a in inputs:
        if a is not None and np.may_share_memory(out, a):
            raise ValueError(f"{name} must not overlap an input array")
    return out


# ---------------------------------------------------------------------------------
# integers and geometry


def _int(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {v!r}")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}") from None


def _pair(v: Any, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or (h, w) pair, every entry in [minimum, 2**31)."""
    if isinstance(v, (tuple, list, np.ndarray)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v!r}")
        pair = (_int(v[0], name), _int(v[1], name))
    else:
        pair = (_int(v, name),) * 2
    for p in pair:
        if p < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
        if p > MAX_EXTENT:
            raise ValueError(f"{name} must be < 2**31, got {v!r}")
    return pair


_PAD_MODES = ("valid", "same", "same_lower")


def _padding(v: Any, name: str = "padding") -> str | tuple[tuple[int, int], tuple[int, int]]:
    """A padding mode string, or explicit ((top, bottom), (left, right))."""
    if isinstance(v, str):
        mode = v.lower()
        if mode not in _PAD_MODES:
            raise ValueError(f"{name} must be an int, a pair, ((top, bottom), (left, right)) "
                             f"or one of {_PAD_MODES}, got {v!r}")
        return mode
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(p, (tuple, list)) for p in v):
        (t, b), (l, r) = (_pair(v[0], name, 0), _pair(v[1], name, 0))
        return (t, b), (l, r)
    h, w = _pair(v, name, 0)
    return (h, h), (w, w)


def _same_pads(size: int, eff: int, stride: int, lower: bool) -> tuple[int, int]:
    total = max((-(-size // stride) - 1) * stride + eff - size, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


class Geometry(NamedTuple):
    """Resolved window geometry of one conv/pool call (per axis: h, w)."""
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pb: int
    pl: int
    pr: int
    oh: int
    ow: int


def _geometry(h: int, w: int, kernel: tuple[int, int], stride: Any, padding: Any, dilation: Any,
              ceil_mode: bool = False, what: str = "input") -> Geometry:
    """Window geometry and output size of a conv or pool over an (h, w) image."""
    kh, kw = kernel
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    pads = _padding(padding)
    if pads == "valid":
        pads = ((0, 0), (0, 0))
    elif isinstance(pads, str):
        lower = pads == "same_lower"
        pads = (_same_pads(h, eh, sh, lower), _same_pads(w, ew, sw, lower))
    (pt, pb), (pl, pr) = pads
    oh = _out_len(h, eh, sh, pt, pb, ceil_mode)
    ow = _out_len(w, ew, sw, pl, pr, ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(
            f"output size would be {oh}x{ow}: the {what} ({h}x{w}) plus padding "
            f"({pt}+{pb}, {pl}+{pr}) is smaller than the dilated kernel ({eh}x{ew}); "
            "check kernel_size/padding/dilation")
    return Geometry(kh, kw, sh, sw, dh, dw, pt, pb, pl, pr, oh, ow)


def _out_len(size: int, eff: int, stride: int, lo: int, hi: int, ceil_mode: bool) -> int:
    span = size + lo + hi - eff  # may be negative: ceil mode then still fits a window
    n = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and n > 0 and (n - 1) * stride >= size + lo:
        n -= 1  # the last window must start inside the image or the leading padding
    return max(n, 0)


def _check_windows_overlap(g: Geometry, h: int, w: int) -> None:
    """Every pooling window must contain at least one image position."""
    for axis, (size, k, s, d, lo, n) in (("height", (h, g.kh, g.sh, g.dh, g.pt, g.oh)),
                                          ("width", (w, g.kw, g.sw, g.dw, g.pl, g.ow))):
        bad = _first_window_outside(size, k, s, d, lo, n)
        if bad is not None:
            raise ValueError(f"padding: pooling window {bad} along the {axis} lies entirely "
                             f"in the padding (kernel {k}, stride {s}, dilation {d}, "
                             f"padding {lo}, size {size})")


def _window_taps_image(o: np.ndarray | int, size: int, k: int, s: int, d: int, lo: int):
    """Whether window(s) ``o`` have a tap in [0, size) (works on ints and int64 arrays)."""
    start = o * s - lo
    first = np.maximum(0, -(start // d))  # first tap index i with start + i*d >= 0
    return (first < k) & (start + first * d < size)


def _first_window_outside(size: int, k: int, s: int, d: int, lo: int, n: int) -> int | None:
    """Index of the first window with no tap inside the image, or None.

    Cost is O(1) unless the dilation exceeds the image (taps can then straddle it);
    huge paddings are refused at the first or last window without allocating.
    """
    for o in (0, n - 1):
        if not _window_taps_image(o, size, k, s, d, lo):
            return o
    if d <= size:
        # Gaps between taps are shorter than the image, so a window that spans part of
        # the image has a tap in it; windows between the first and last one do.
        return None
    eff = d * (k - 1) + 1
    # Only windows that start before the image or end after it can miss it.
    head_end = min(n, -(-lo // s) + 1)
    tail_start = max(head_end, min(n, (size + lo - eff) // s + 1 if size + lo >= eff else 0))
    chunk = 1 << 20
    for lo_o, hi_o in ((0, head_end), (tail_start, n)):
        for c in range(lo_o, hi_o, chunk):
            o = np.arange(c, min(hi_o, c + chunk), dtype=np.int64)
            ok = _window_taps_image(o, size, k, s, d, lo)
            if not ok.all():
                return int(o[~ok][0])
    return None


# ---------------------------------------------------------------------------------
# layouts


def _nhwc(layout: Any) -> bool:
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    return layout == "NHWC"


def _dims(shape: Sequence[int], nhwc: bool) -> tuple[int, int, int, int]:
    """(N, C, H, W) of a data shape in the given layout."""
    n, a, b, c = shape
    return (n, c, a, b) if nhwc else (n, a, b, c)


def _data_shape(n: int, c: int, h: int, w: int, nhwc: bool) -> tuple[int, int, int, int]:
    return (n, h, w, c) if nhwc else (n, c, h, w)


def _wdims(shape: Sequence[int], nhwc: bool) -> tuple[int, int, int, int]:
    """(K, C/groups, kh, kw) of a forward-conv weight shape (OIHW or HWIO)."""
    a, b, c, d = shape
    return (d, c, a, b) if nhwc else (a, b, c, d)


def _check_nonempty(name: str, **extents: int) -> None:
    for what, v in extents.items():
        if v == 0:
            raise ValueError(f"{name} has zero {what}; only the batch axis may be empty")


def _unbatch(y: np.ndarray, squeeze: bool) -> np.ndarray:
    return y[0] if squeeze else y


def _result_batched(out: Any, shape: tuple[int, ...], dtype: np.dtype,
                    inputs: Sequence[np.ndarray | None], squeeze: bool) -> np.ndarray:
    """Like _result, for a 4-D result that the user sees as 3-D when ``squeeze``."""
    if squeeze:
        return _result(out, shape[1:], dtype, inputs)[None]
    return _result(out, shape, dtype, inputs)


# ---------------------------------------------------------------------------------
# convolution


class _ConvArgs(NamedTuple):
    n: int
    c: int
    h: int
    w: int
    k: int
    g: Geometry
    groups: int


def _conv_args(fn: str, data_shape: Sequence[int], weight_shape: Sequence[int], stride: Any,
               padding: Any, dilation: Any, groups: Any, nhwc: bool,
               data_name: str = "x", weight_name: str = "weight") -> _ConvArgs:
    """Check a forward conv's shapes and parameters; resolve its geometry."""
    n, c, h, w = _dims(data_shape, nhwc)
    k, cg, kh, kw = _wdims(weight_shape, nhwc)
    groups = _int(groups, "groups")
    if groups < 1:
        raise ValueError(f"{fn}: groups must be >= 1, got {groups}")
    _check_nonempty(data_name, channels=c, height=h, width=w)
    _check_nonempty(weight_name, output_channels=k, input_channels=cg,
                    kernel_height=kh, kernel_width=kw)
    if c % groups:
        raise ValueError(f"{fn}: groups={groups} does not divide the {c} input channels")
    if k % groups:
        raise ValueError(f"{fn}: groups={groups} does not divide the {k} output channels "
                         f"of {weight_name}")
    if cg * groups != c:
        raise ValueError(f"{fn}: {weight_name} of shape {tuple(weight_shape)} expects "
                         f"{cg * groups} input channels (C/groups={cg}, groups={groups}) "
                         f"but {data_name} has {c}")
    _check_elements(data_shape, data_name)
    g = _geometry(h, w, (kh, kw), stride, padding, dilation)
    return _ConvArgs(n, c, h, w, k, g, groups)


def _weight(weight: Any, dtype: np.dtype, name: str = "weight") -> np.ndarray:
    w = _float_array(weight, name, dtype)
    _check_ndim(w, name, (4,))
    return w


def _bias(bias: Any, dtype: np.dtype, k: int) -> np.ndarray | None:
    if bias is None:
        return None
    b = _float_array(bias, "bias", dtype)
    if b.shape != (k,):
        raise ValueError(f"bias must have shape ({k},), got {b.shape}")
    return b


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1, *, layout: str = "NCHW",
           out: np.ndarray | None = None) -> np.ndarray:
    """2-D convolution (cross-correlation, as in PyTorch and TensorFlow).

    Parameters
    ----------
    x : array_like
        Input, (N, C, H, W) for NCHW or (N, H, W, C) for NHWC; 3-D means a batch of one.
    weight : array_like
        (K, C/groups, kh, kw) (OIHW) for NCHW, (kh, kw, C/groups, K) (HWIO) for NHWC.
    bias : array_like, optional
        (K,).
    stride, dilation : int or (int, int)
        >= 1.
    padding : int, (int, int), ((top, bottom), (left, right)), "valid", "same" or "same_lower"
    groups : int
        Divides C and K.
    layout : {"NCHW", "NHWC"}
    out : ndarray, optional
        C-contiguous array of the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        (N, K, OH, OW) or (N, OH, OW, K), OH = (H + pt + pb - dilation*(kh-1) - 1) // stride + 1.

    Raises
    ------
    TypeError, ValueError
        On any bad argument (the message names it), before any computation.
    """
    nhwc = _nhwc(layout)
    x, squeeze = _batched(_float_array(x, "x"), "x")
    w = _weight(weight, x.dtype)
    a = _conv_args("conv2d", x.shape, w.shape, stride, padding, dilation, groups, nhwc)
    b = _bias(bias, x.dtype, a.k)
    y = _result_batched(out, _data_shape(a.n, a.k, a.g.oh, a.g.ow, nhwc), x.dtype, (x, w, b), squeeze)
    if a.n:
        g = a.g
        kernels().conv2d_forward(x, w, b, y, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, a.groups, nhwc)
    return _unbatch(y, squeeze)


def _check_grad_shape(fn: str, gy: np.ndarray, expected: tuple[int, ...], squeeze: bool) -> None:
    if gy.shape != expected:
        shown = expected[1:] if squeeze else expected
        raise ValueError(f"{fn}: grad_out has shape {gy.shape[1:] if squeeze else gy.shape} but "
                         f"the forward conv/pool with these parameters gives {shown}")


def conv2d_backward_input(grad_out: Any, weight: Any, input_shape: Sequence[int], stride: Any = 1,
                          padding: Any = 0, dilation: Any = 1, groups: int = 1, *,
                          layout: str = "NCHW", out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of ``conv2d`` with respect to its input (TF's Conv2DBackpropInput).

    Parameters
    ----------
    grad_out : array_like
        Gradient of the conv2d output, (N, K, OH, OW) or (N, OH, OW, K).
    weight : array_like
        The forward weight (OIHW for NCHW, HWIO for NHWC).
    input_shape : tuple of int
        Shape of the forward input x (4 entries, or 3 for a batch of one).
    stride, padding, dilation, groups, layout
        As given to the forward ``conv2d``.
    out : ndarray, optional
        Array of ``input_shape`` to write into.

    Returns
    -------
    ndarray
        The gradient with respect to x, of shape ``input_shape``.
    """
    nhwc = _nhwc(layout)
    gy, squeeze = _batched(_float_array(grad_out, "grad_out"), "grad_out")
    w = _weight(weight, gy.dtype)
    shape = _input_shape(input_shape, squeeze)
    a = _conv_args("conv2d_backward_input", shape, w.shape, stride, padding, dilation, groups,
                   nhwc, data_name="input_shape")
    g = a.g
    _check_grad_shape("conv2d_backward_input", gy, _data_shape(a.n, a.k, g.oh, g.ow, nhwc), squeeze)
    gx = _result_batched(out, shape, gy.dtype, (gy, w), squeeze)
    if a.n:
        kernels().conv2d_backward_input(gy, w, gx, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw,
                                        a.groups, nhwc)
    return _unbatch(gx, squeeze)


def conv2d_backward_filter(x: Any, grad_out: Any, weight_shape: Sequence[int], stride: Any = 1,
                           padding: Any = 0, dilation: Any = 1, groups: int = 1, *,
                           layout: str = "NCHW", out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of ``conv2d`` with respect to its weight (TF's Conv2DBackpropFilter).

    Parameters
    ----------
    x : array_like
        The forward input.
    grad_out : array_like
        Gradient of the conv2d output.
    weight_shape : tuple of int
        Shape of the forward weight (OIHW for NCHW, HWIO for NHWC).
    stride, padding, dilation, groups, layout
        As given to the forward ``conv2d``.
    out : ndarray, optional
        Array of ``weight_shape`` to write into.

    Returns
    -------
    ndarray
        The gradient with respect to the weight, summed over the batch.
    """
    nhwc = _nhwc(layout)
    x, squeeze = _batched(_float_array(x, "x"), "x")
    gy = _float_array(grad_out, "grad_out", x.dtype)
    _check_ndim(gy, "grad_out", (x.ndim - int(squeeze),))
    gy = gy[None] if squeeze else gy
    wshape = _shape_arg(weight_shape, "weight_shape", (4,))
    a = _conv_args("conv2d_backward_filter", x.shape, wshape, stride, padding, dilation, groups,
                   nhwc, weight_name="weight_shape")
    g = a.g
    _check_grad_shape("conv2d_backward_filter", gy, _data_shape(a.n, a.k, g.oh, g.ow, nhwc), squeeze)
    gw = _result(out, wshape, x.dtype, (x, gy))
    if a.n:
        kernels().conv2d_backward_filter(x, gy, gw, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw,
                                         a.groups, nhwc)
    else:
        gw[...] = 0
    return gw


def conv2d_backward_bias(grad_out: Any, *, layout: str = "NCHW") -> np.ndarray:
    """Gradient of ``conv2d`` with respect to its bias: ``grad_out`` summed over N, H, W.

    Parameters
    ----------
    grad_out : array_like
        (N, K, OH, OW) or (N, OH, OW, K); 3-D means a batch of one.
    layout : {"NCHW", "NHWC"}

    Returns
    -------
    ndarray
        (K,).
    """
    nhwc = _nhwc(layout)
    gy, _ = _batched(_float_array(grad_out, "grad_out"), "grad_out")
    n, k, oh, ow = _dims(gy.shape, nhwc)
    _check_nonempty("grad_out", channels=k, height=oh, width=ow)
    gb = np.empty((k,), gy.dtype)
    if n:
        kernels().conv2d_backward_bias(gy, gb, nhwc)
    else:
        gb[...] = 0
    return gb


def _transpose_len(size: int, k: int, s: int, d: int, lo: int, hi: int) -> int:
    return (size - 1) * s - lo - hi + d * (k - 1) + 1


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1, *,
                     layout: str = "NCHW", output_size: Sequence[int] | None = None,
                     out: np.ndarray | None = None) -> np.ndarray:
    """Transposed convolution: the adjoint of the ``conv2d`` whose weight it takes.

    Parameters
    ----------
    x : array_like
        (N, C_in, H, W) or (N, H, W, C_in); 3-D means a batch of one.
    weight : array_like
        (C_in, C_out/groups, kh, kw) for NCHW (as PyTorch), (kh, kw, C_out/groups, C_in)
        for NHWC (as TensorFlow): the weight of the forward conv from C_out to C_in.
    bias : array_like, optional
        (C_out,).
    stride, padding, dilation, groups
        Those of the forward conv this inverts.
    output_padding : int or (int, int)
        Extra rows/cols at the bottom/right, 0 <= output_padding < max(stride, dilation).
    output_size : tuple of int, optional
        Wanted (H_out, W_out) (or a full shape); chooses output_padding.
    layout : {"NCHW", "NHWC"}
    out : ndarray, optional

    Returns
    -------
    ndarray
        (N, C_out, H_out, W_out) or (N, H_out, W_out, C_out), with
        H_out = (H-1)*stride - pad_top - pad_bottom + dilation*(kh-1) + 1 + output_padding.
    """
    fn = "conv_transpose2d"
    nhwc = _nhwc(layout)
    x, squeeze = _batched(_float_array(x, "x"), "x")
    w = _weight(weight, x.dtype)
    n, c_in, h, wd = _dims(x.shape, nhwc)
    k_fwd, cg_out, kh, kw = _wdims(w.shape, nhwc)
    groups_ = _int(groups, "groups")
    if groups_ < 1:
        raise ValueError(f"{fn}: groups must be >= 1, got {groups_}")
    _check_nonempty("x", channels=c_in, height=h, width=wd)
    _check_nonempty("weight", channels=k_fwd * cg_out, kernel_height=kh, kernel_width=kw)
    if k_fwd != c_in:
        raise ValueError(f"{fn}: weight of shape {w.shape} is for {k_fwd} input channels "
                         f"but x has {c_in}")
    if c_in % groups_:
        raise ValueError(f"{fn}: groups={groups_} does not divide the {c_in} channels of x")
    c_out = cg_out * groups_
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    hw_out = _transpose_output_hw(fn, (h, wd), (kh, kw), (sh, sw), (dh, dw), padding,
                                  output_padding, output_size, nhwc)
    fwd_shape = _data_shape(n, c_out, hw_out[0][0], hw_out[1][0], nhwc)
    pads = ((hw_out[0][1], hw_out[0][2]), (hw_out[1][1], hw_out[1][2]))
    a = _conv_args(fn, fwd_shape, w.shape, (sh, sw), pads, (dh, dw), groups_, nhwc,
                   data_name="output", weight_name="weight")
    b = _bias(bias, x.dtype, c_out)
    y = _result_batched(out, fwd_shape, x.dtype, (x, w, b), squeeze)
    if n:
        g = a.g
        gy = x
        if (g.oh, g.ow) != (h, wd):
            # output_padding >= stride (allowed when dilation > stride) adds rows the
            # forward conv would have produced outputs for: those see zero gradient.
            gy = np.zeros(_data_shape(n, c_in, g.oh, g.ow, nhwc), x.dtype)
            gy[_data_index(slice(0, h), slice(0, wd), nhwc)] = x
        # the bias rides along in the kernel's stores (one pass fewer over y)
        kernels().conv_transpose2d_forward(gy, w, b, y, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw,
                                           a.groups, nhwc)
    return _unbatch(y, squeeze)


def _data_index(hs: slice, ws: slice, nhwc: bool) -> tuple:
    return (slice(None), hs, ws) if nhwc else (slice(None), slice(None), hs, ws)


def _spatial_size(size: Any, name: str, nhwc: bool) -> tuple[int, int]:
    """(H, W) of an (H, W) pair or of a full 3-D/4-D shape in the given layout."""
    dims = _shape_arg(size, name, (2, 3, 4))
    if len(dims) == 2 or not nhwc:
        return dims[-2], dims[-1]
    return dims[-3], dims[-2]


def _transpose_output_hw(fn: str, hw: tuple[int, int], k: tuple[int, int], s: tuple[int, int],
                         d: tuple[int, int], padding: Any, output_padding: Any,
                         output_size: Any, nhwc: bool) -> tuple[tuple[int, int, int], ...]:
    """Per axis (out_size, pad_lo, pad_hi) of a transposed conv."""
    pads = _padding(padding)
    op = _pair(output_padding, "output_padding", 0)
    wanted = None if output_size is None else _spatial_size(output_size, "output_size", nhwc)
    result = []
    for axis in range(2):
        size, kk, ss, dd = hw[axis], k[axis], s[axis], d[axis]
        eff = dd * (kk - 1) + 1
        target = wanted[axis] if wanted else None
        if isinstance(pads, str) and pads != "valid":
            if op[axis]:
                raise ValueError(f"{fn}: output_padding {op} cannot be combined with "
                                 f"padding={padding!r}; give output_size instead")
            target = target or size * ss  # TF's SAME: the forward "same" conv of this size
            lo, hi = _same_pads(target, eff, ss, pads == "same_lower")
        elif pads == "valid":
            lo, hi = 0, 0
        else:
            lo, hi = pads[axis]
        base = _transpose_len(size, kk, ss, dd, lo, hi)
        limit = max(ss, dd)
        if target is not None:
            extra = target - base
            if not 0 <= extra < limit:
                shown = tuple(wanted) if wanted else target
                raise ValueError(f"{fn}: output_size {shown} is unreachable: along "
                                 f"axis {axis} it must be in [{base}, {base + limit - 1}]")
        else:
            extra = op[axis]
            if extra >= limit:
                raise ValueError(f"{fn}: output_padding {op} must be smaller than "
                                 f"max(stride, dilation) = {limit} along axis {axis}")
        if base + extra < 1:
            raise ValueError(f"{fn}: output size would be {base + extra} along axis {axis}; "
                             "padding is too large")
        result.append((base + extra, lo, hi))
    return tuple(result)


# ---------------------------------------------------------------------------------
# pooling


def _pool_geometry(h: int, w: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                   ceil_mode: Any) -> Geometry:
    kernel = _pair(kernel_size, "kernel_size")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    g = _geometry(h, w, kernel, kernel if stride is None else stride, padding, dilation,
                  bool(ceil_mode))
    _check_windows_overlap(g, h, w)
    return g


def _pool_input(x: Any, layout: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                ceil_mode: Any) -> tuple[np.ndarray, bool, bool, tuple[int, int, int, int], Geometry]:
    """Checked input of a forward pooling: (x, squeeze, nhwc, (N, C, H, W), geometry)."""
    nhwc = _nhwc(layout)
    x, squeeze = _batched(_float_array(x, "x"), "x")
    n, c, h, w = _dims(x.shape, nhwc)
    _check_nonempty("x", channels=c, height=h, width=w)
    g = _pool_geometry(h, w, kernel_size, stride, padding, dilation, ceil_mode)
    return x, squeeze, nhwc, (n, c, h, w), g


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False, *, layout: str = "NCHW",
               out: np.ndarray | None = None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """2-D max pooling; optionally also the argmax positions.

    Parameters
    ----------
    x : array_like
        (N, C, H, W) or (N, H, W, C); 3-D means a batch of one.
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int, (int, int), ((top, bottom), (left, right)), "valid", "same" or "same_lower"
        Padding never wins the max; every window must overlap the image.
    dilation : int or (int, int)
    ceil_mode : bool
        Round the output size up (the last window must start inside the image or the
        leading padding).
    return_indices : bool
        Also return int64 indices ``h * W + w`` of each maximum in its (n, c) plane.
    layout : {"NCHW", "NHWC"}
    out : ndarray, optional
        Array for the pooled values.

    Returns
    -------
    ndarray or (ndarray, ndarray)
        Pooled values, and the indices if ``return_indices``.  Ties pick the first
        maximum in row-major window order; a NaN in the window wins.
    """
    x, squeeze, nhwc, (n, c, _, _), g = _pool_input(x, layout, kernel_size, stride, padding,
                                                    dilation, ceil_mode)
    shape = _data_shape(n, c, g.oh, g.ow, nhwc)
    y = _result_batched(out, shape, x.dtype, (x,), squeeze)
    idx = np.empty(shape, _INDEX) if return_indices else None
    if n:
        kernels().max_pool2d_forward(x, y, idx, g.kh, g.kw, g.sh, g.sw, g.pt, g.pl, g.dh, g.dw, nhwc)
    if return_indices:
        return _unbatch(y, squeeze), _unbatch(idx, squeeze)
    return _unbatch(y, squeeze)


def _indices_below(indices: np.ndarray, plane: int) -> bool:
    """Whether every index, read as unsigned, is < ``plane``: a negative int64 reads as
    >= 2**63, so this holds exactly when every index lies in [0, plane).  The backend's
    threaded check if it has one, else one NumPy pass (the unsigned maximum)."""
    below = index_check()
    if below is not None:
        return bool(below(indices, plane))
    return int(indices.view(np.uint64).max()) < plane


def _check_indices(indices: np.ndarray, plane: int, name: str = "indices") -> None:
    """Every index must address a position of its (n, c) plane (checked before writing).

    One pass over the indices (they are as large as the data, so a second pass costs
    as much as a good part of the kernel).  Only a refused call pays for min/max, to
    name the culprit.
    """
    if indices.size == 0:
        return
    if _indices_below(indices, plane):
        return
    lo, hi = int(indices.min()), int(indices.max())
    bad = lo if lo < 0 else hi
    raise ValueError(f"{name} must lie in [0, {plane}) (positions in an H*W plane), "
                     f"found {bad}")


def _input_shape(input_shape: Any, squeeze: bool) -> tuple[int, ...]:
    shape = _shape_arg(input_shape, "input_shape", (3,) if squeeze else (4,))
    return (1,) + shape if squeeze else shape


def max_pool2d_backward(grad_out: Any, indices: Any, input_shape: Sequence[int], *,
                        layout: str = "NCHW", out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of ``max_pool2d``: ``grad_out`` scattered (summed) to the recorded maxima.

    Parameters
    ----------
    grad_out : array_like
        Gradient of the pooled output.
    indices : array_like of int64
        The indices ``max_pool2d(..., return_indices=True)`` returned (same shape).
    input_shape : tuple of int
        Shape of the pooled input.
    layout : {"NCHW", "NHWC"}
    out : ndarray, optional

    Returns
    -------
    ndarray
        Gradient with respect to the input, of ``input_shape``.
    """
    nhwc = _nhwc(layout)
    gy, squeeze = _batched(_float_array(grad_out, "grad_out"), "grad_out")
    idx = _index_array(indices, "indices")
    idx = idx[None] if squeeze and idx.ndim == 3 else idx
    if idx.shape != gy.shape:
        raise ValueError(f"indices must have the shape of grad_out {gy.shape}, got {idx.shape}")
    shape = _input_shape(input_shape, squeeze)
    n, c, h, w = _dims(shape, nhwc)
    gn, gc, _, _ = _dims(gy.shape, nhwc)
    _check_nonempty("input_shape", channels=c, height=h, width=w)
    if (n, c) != (gn, gc):
        raise ValueError(f"input_shape {tuple(input_shape)} does not match grad_out's batch and "
                         f"channels ({gn}, {gc})")
    _check_indices(idx, h * w)
    gx = _result_batched(out, shape, gy.dtype, (gy, idx), squeeze)
    if n:
        kernels().max_pool2d_backward(gy, idx, gx, nhwc)
    return _unbatch(gx, squeeze)


def _avg_args(divisor_override: Any, count_include_pad: Any) -> tuple[int, bool]:
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad must be a bool, got {count_include_pad!r}")
    if divisor_override is None:
        return 0, bool(count_include_pad)
    d = _int(divisor_override, "divisor_override")
    if not 1 <= d <= MAX_EXTENT:
        raise ValueError(f"divisor_override must be None or an int in [1, 2**31), got {d}")
    return d, bool(count_include_pad)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None, *, layout: str = "NCHW",
               out: np.ndarray | None = None) -> np.ndarray:
    """2-D average pooling.

    Parameters
    ----------
    x : array_like
        (N, C, H, W) or (N, H, W, C); 3-D means a batch of one.
    kernel_size, stride, padding, dilation, ceil_mode
        As in ``max_pool2d`` (dilation as in ONNX AveragePool).
    count_include_pad : bool
        Divide by the number of window positions inside the padded image (True) or
        inside the image (False).
    divisor_override : int, optional
        Divide by this instead.
    layout : {"NCHW", "NHWC"}
    out : ndarray, optional

    Returns
    -------
    ndarray
        Pooled values.
    """
    x, squeeze, nhwc, (n, c, _, _), g = _pool_input(x, layout, kernel_size, stride, padding,
                                                    dilation, ceil_mode)
    div, cip = _avg_args(divisor_override, count_include_pad)
    y = _result_batched(out, _data_shape(n, c, g.oh, g.ow, nhwc), x.dtype, (x,), squeeze)
    if n:
        kernels().avg_pool2d_forward(x, y, g.kh, g.kw, g.sh, g.sw, g.pt, g.pb, g.pl, g.pr,
                                     g.dh, g.dw, cip, div, nhwc)
    return _unbatch(y, squeeze)


def avg_pool2d_backward(grad_out: Any, input_shape: Sequence[int], kernel_size: Any,
                        stride: Any = None, padding: Any = 0, dilation: Any = 1,
                        ceil_mode: bool = False, count_include_pad: bool = True,
                        divisor_override: int | None = None, *, layout: str = "NCHW",
                        out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of ``avg_pool2d`` with respect to its input.

    Parameters
    ----------
    grad_out : array_like
        Gradient of the pooled output.
    input_shape : tuple of int
        Shape of the pooled input.
    kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override, layout
        As given to ``avg_pool2d``.
    out : ndarray, optional

    Returns
    -------
    ndarray
        Gradient with respect to the input, of ``input_shape``.
    """
    nhwc = _nhwc(layout)
    gy, squeeze = _batched(_float_array(grad_out, "grad_out"), "grad_out")
    shape = _input_shape(input_shape, squeeze)
    n, c, h, w = _dims(shape, nhwc)
    _check_nonempty("input_shape", channels=c, height=h, width=w)
    _check_elements(shape, "input_shape")
    g = _pool_geometry(h, w, kernel_size, stride, padding, dilation, ceil_mode)
    div, cip = _avg_args(divisor_override, count_include_pad)
    _check_grad_shape("avg_pool2d_backward", gy, _data_shape(n, c, g.oh, g.ow, nhwc), squeeze)
    gx = _result_batched(out, shape, gy.dtype, (gy,), squeeze)
    if n:
        kernels().avg_pool2d_backward(gy, gx, g.kh, g.kw, g.sh, g.sw, g.pt, g.pb, g.pl, g.pr,
                                      g.dh, g.dw, cip, div, nhwc)
    return _unbatch(gx, squeeze)


# ---------------------------------------------------------------------------------
# unpooling and upsampling


def _unpool_len(size: int, k: int, s: int, lo: int, hi: int) -> int:
    return (size - 1) * s - lo - hi + k


def max_unpool2d(x: Any, indices: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 output_size: Sequence[int] | None = None, *, layout: str = "NCHW",
                 out: np.ndarray | None = None) -> np.ndarray:
    """Partial inverse of ``max_pool2d``: scatter ``x`` to the recorded positions, zeros elsewhere.

    Parameters
    ----------
    x : array_like
        Pooled values, (N, C, H, W) or (N, H, W, C); 3-D means a batch of one.
    indices : array_like of int64
        Positions ``h * W_out + w`` from ``max_pool2d(..., return_indices=True)``.
    kernel_size, stride, padding
        Those of the max pooling (``stride=None`` means ``kernel_size``; padding int,
        pair, per-side or "valid").
    output_size : tuple of int, optional
        (H_out, W_out) or a full shape, within ``default +- stride`` of the default
        (H-1)*stride - pad_top - pad_bottom + kernel.
    layout : {"NCHW", "NHWC"}
    out : ndarray, optional

    Returns
    -------
    ndarray
        (N, C, H_out, W_out) or (N, H_out, W_out, C).  Duplicate indices: the last
        write (row-major order) wins.
    """
    nhwc = _nhwc(layout)
    x, squeeze = _batched(_float_array(x, "x"), "x")
    idx = _index_array(indices, "indices")
    idx = idx[None] if squeeze and idx.ndim == 3 else idx
    if idx.shape != x.shape:
        raise ValueError(f"indices must have the shape of x {x.shape}, got {idx.shape}")
    n, c, h, w = _dims(x.shape, nhwc)
    _check_nonempty("x", channels=c, height=h, width=w)
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else _pair(stride, "stride")
    pads = _padding(padding)
    if isinstance(pads, str):
        if pads != "valid":
            raise ValueError(f"padding must be explicit or 'valid' for max_unpool2d, got {padding!r}")
        pads = ((0, 0), (0, 0))
    default = (_unpool_len(h, kh, sh, *pads[0]), _unpool_len(w, kw, sw, *pads[1]))
    if output_size is None:
        oh, ow = default
    else:
        oh, ow = _spatial_size(output_size, "output_size", nhwc)
        for want, base, s in ((oh, default[0], sh), (ow, default[1], sw)):
            if not base - s < want < base + s:
                raise ValueError(f"output_size {(oh, ow)} must be within (default - stride, "
                                 f"default + stride) = ({default[0] - sh}..{default[0] + sh}, "
                                 f"{default[1] - sw}..{default[1] + sw}) exclusive")
    if oh < 1 or ow < 1:
        raise ValueError(f"output size would be {oh}x{ow}; check kernel_size/stride/padding")
    _check_indices(idx, oh * ow)
    y = _result_batched(out, _data_shape(n, c, oh, ow, nhwc), x.dtype, (x, idx), squeeze)
    if n:
        kernels().max_unpool2d_forward(x, idx, y, nhwc)
    return _unbatch(y, squeeze)


def max_unpool2d_backward(grad_out: Any, indices: Any, *, layout: str = "NCHW",
                          out: np.ndarray | None = None) -> np.ndarray:
    """Gradient of ``max_unpool2d``: gather ``grad_out`` at the recorded positions.

    Parameters
    ----------
    grad_out : array_like
        Gradient of the unpooled output, (N, C, H_out, W_out) or (N, H_out, W_out, C).
    indices : array_like of int64
        The indices given to ``max_unpool2d``; the result has their shape.
    layout : {"NCHW", "NHWC"}
    out : ndarray, optional

    Returns
    -------
    ndarray
        Gradient with respect to the unpool input.
    """
    nhwc = _nhwc(layout)
    gy, squeeze = _batched(_float_array(grad_out, "grad_out"), "grad_out")
    idx = _index_array(indices, "indices")
    _check_ndim(idx, "indices", (gy.ndim - int(squeeze),))
    idx = idx[None] if squeeze else idx
    n, c, oh, ow = _dims(gy.shape, nhwc)
    xn, xc, h, w = _dims(idx.shape, nhwc)
    _check_nonempty("grad_out", channels=c, height=oh, width=ow)
    if (n, c) != (xn, xc):
        raise ValueError(f"indices of shape {idx.shape} do not match grad_out's batch and "
                         f"channels ({n}, {c})")
    _check_indices(idx, oh * ow)
    gx = _result_batched(out, idx.shape, gy.dtype, (gy, idx), squeeze)
    if n and h and w:
        kernels().max_unpool2d_backward(gy, idx, gx, nhwc)
    return _unbatch(gx, squeeze)


def upsample_nearest2d(x: Any, scale_factor: Any, *, layout: str = "NCHW") -> np.ndarray:
    """Nearest-neighbour upsampling by integer factors.

    Parameters
    ----------
    x : array_like
        (N, C, H, W) or (N, H, W, C); 3-D means a batch of one.
    scale_factor : int or (int, int)
        >= 1.
    layout : {"NCHW", "NHWC"}

    Returns
    -------
    ndarray
        (N, C, H*fh, W*fw) or (N, H*fh, W*fw, C); ``y[.., h, w] = x[.., h // fh, w // fw]``.
    """
    nhwc = _nhwc(layout)
    x, squeeze = _batched(_float_array(x, "x"), "x")
    fh, fw = _pair(scale_factor, "scale_factor")
    n, c, h, w = _dims(x.shape, nhwc)
    _check_nonempty("x", channels=c, height=h, width=w)
    y = _result_batched(None, _data_shape(n, c, h * fh, w * fw, nhwc), x.dtype, (), squeeze)
    if n:
        kernels().upsample_nearest2d_forward(x, y, fh, fw, nhwc)
    return _unbatch(y, squeeze)


def upsample_nearest2d_backward(grad_out: Any, scale_factor: Any, *,
                                layout: str = "NCHW") -> np.ndarray:
    """Gradient of ``upsample_nearest2d``: sums of ``fh x fw`` blocks of ``grad_out``.

    Parameters
    ----------
    grad_out : array_like
        (N, C, H*fh, W*fw) or (N, H*fh, W*fw, C).
    scale_factor : int or (int, int)
    layout : {"NCHW", "NHWC"}

    Returns
    -------
    ndarray
        (N, C, H, W) or (N, H, W, C).
    """
    nhwc = _nhwc(layout)
    gy, squeeze = _batched(_float_array(grad_out, "grad_out"), "grad_out")
    fh, fw = _pair(scale_factor, "scale_factor")
    n, c, oh, ow = _dims(gy.shape, nhwc)
    _check_nonempty("grad_out", channels=c, height=oh, width=ow)
    if oh % fh or ow % fw:
        raise ValueError(f"grad_out spatial size {oh}x{ow} is not a multiple of "
                         f"scale_factor ({fh}, {fw})")
    gx = _result_batched(None, _data_shape(n, c, oh // fh, ow // fw, nhwc), gy.dtype, (), squeeze)
    if n:
        kernels().upsample_nearest2d_backward(gy, gx, fh, fw, nhwc)
    return _unbatch(gx, squeeze)
