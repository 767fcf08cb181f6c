"""PyTorch adapter: aekernels kernels as ``torch.library`` custom ops, functions and layers.

Importing this module registers these ops (CPU tensors, float32/float64, NCHW)::

    aekernels::conv2d  aekernels::conv_transpose2d  aekernels::max_pool2d_with_indices
    aekernels::avg_pool2d  aekernels::max_unpool2d
    aekernels::conv2d_backward_input  aekernels::conv2d_backward_filter
    aekernels::conv2d_backward_bias  aekernels::max_pool2d_backward
    aekernels::avg_pool2d_backward  aekernels::max_unpool2d_backward

Each has a fake (meta) implementation, so ``torch.compile`` and ``torch.export`` can
trace through it, and an autograd formula built on the aekernels backward kernels
(the backward ops have autograd formulas too, so double backward works).

Use them through the functions below, which take ``torch.nn.functional``'s arguments
in ``torch.nn.functional``'s order (plus ``"same"``/``"same_lower"``/per-side padding,
and ``dilation`` for ``avg_pool2d``), or through the layers, which subclass the torch
layers (same parameters, initialisation and ``state_dict``) and only replace
``forward``::

    import torch
    from aekernels.interop import torch as aet

    model = torch.nn.Sequential(
        aet.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), aet.MaxPool2d(2),
        aet.Conv2d(8, 16, 3, padding="same"), torch.nn.ReLU(), aet.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 10))
    loss = torch.nn.functional.cross_entropy(model(torch.randn(32, 1, 28, 28)),
                                             torch.randint(0, 10, (32,)))
    loss.backward()                       # gradients come from the aekernels kernels

    y = torch.ops.aekernels.conv2d(x, w, None, [1, 1], "explicit", [1, 1, 1, 1], [1, 1], 1)

CPU tensors are handed to the kernels without a copy when contiguous (a
non-contiguous tensor is copied once) and results come back through
``torch.from_numpy`` (no copy).  Arguments are checked by the NumPy API, so bad input
raises the same ``ValueError``/``TypeError`` (naming the argument) as
``aekernels.conv2d`` etc.; a tensor that is not on the CPU or has no NumPy dtype
(e.g. bfloat16) is a ``TypeError`` here.  Under fake tensors (``torch.compile``) shapes
come from the same checks run on an empty batch.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _api
from ._shapes import Spec, dry_run, pads4, unpads4

__all__ = [
    "conv2d", "conv_transpose2d", "max_pool2d", "max_pool2d_with_indices", "avg_pool2d",
    "max_unpool2d", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "MaxUnpool2d",
    "OPS",
]

_NS = "aekernels"

# ---------------------------------------------------------------------------------
# tensors <-> arrays


def _np(t: Tensor, name: str) -> np.ndarray:
    """A NumPy view of a CPU tensor (no copy; strides preserved)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise TypeError(f"{name} must be a CPU tensor, got one on {t.device}")
    try:
        return t.detach().resolve_conj().resolve_neg().numpy()
    except TypeError:  # bfloat16 & co. have no NumPy dtype
        raise TypeError(f"{name}: dtype {t.dtype} has no NumPy equivalent "
                        "(aekernels takes float32 or float64 data, int64 indices)") from None


_DTYPES: dict[torch.dtype, np.dtype] = {
    t: np.dtype(n) for t, n in (
        (torch.float32, np.float32), (torch.float64, np.float64), (torch.float16, np.float16),
        (torch.int8, np.int8), (torch.int16, np.int16), (torch.int32, np.int32),
        (torch.int64, np.int64), (torch.uint8, np.uint8), (torch.bool, np.bool_),
        (torch.complex64, np.complex64), (torch.complex128, np.complex128))}


def _spec(t: Tensor, name: str, batched: bool = True) -> Spec:
    """Shape/dtype stand-in of a (possibly fake) tensor, for dry_run."""
    if t.dtype not in _DTYPES:
        raise TypeError(f"{name}: dtype {t.dtype} has no NumPy equivalent "
                        "(aekernels takes float32 or float64 data, int64 indices)")
    return Spec(tuple(t.shape), _DTYPES[t.dtype], batched)


def _batch(t: Tensor) -> Any:
    return t.shape[0] if t.dim() else 0


def _t(a: np.ndarray) -> Tensor:
    return torch.from_numpy(a)


def _opt(t: Optional[Tensor], name: str) -> Optional[np.ndarray]:
    return None if t is None else _np(t, name)


def _ints(v: Optional[Sequence[int]]) -> Optional[tuple[int, ...]]:
    return None if v is None else tuple(int(i) for i in v)


def _op(name: str):
    return getattr(getattr(torch.ops, _NS), name).default


# ---------------------------------------------------------------------------------
# convolution ops


@torch.library.custom_op(f"{_NS}::conv2d", mutates_args=())
def _conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: Sequence[int],
            padding_mode: str, padding: Sequence[int], dilation: Sequence[int],
            groups: int) -> Tensor:
    return _t(_api.conv2d(_np(x, "x"), _np(weight, "weight"), _opt(bias, "bias"), _ints(stride),
                          unpads4(padding_mode, padding), _ints(dilation), groups))


@_conv2d.register_fake
def _(x, weight, bias, stride, padding_mode, padding, dilation, groups):
    (shape,) = dry_run(_api.conv2d, _batch(x), [
        _spec(x, "x"), _spec(weight, "weight", False),
        None if bias is None else _spec(bias, "bias", False),
        _ints(stride), unpads4(padding_mode, padding), _ints(dilation), groups])
    return x.new_empty(shape)


@torch.library.custom_op(f"{_NS}::conv2d_backward_input", mutates_args=())
def _conv2d_backward_input(grad_out: Tensor, weight: Tensor, input_shape: Sequence[int],
                           stride: Sequence[int], padding_mode: str, padding: Sequence[int],
                           dilation: Sequence[int], groups: int) -> Tensor:
    return _t(_api.conv2d_backward_input(
        _np(grad_out, "grad_out"), _np(weight, "weight"), _ints(input_shape), _ints(stride),
        unpads4(padding_mode, padding), _ints(dilation), groups))


@_conv2d_backward_input.register_fake
def _(grad_out, weight, input_shape, stride, padding_mode, padding, dilation, groups):
    return grad_out.new_empty(input_shape)


@torch.library.custom_op(f"{_NS}::conv2d_backward_filter", mutates_args=())
def _conv2d_backward_filter(x: Tensor, grad_out: Tensor, weight_shape: Sequence[int],
                            stride: Sequence[int], padding_mode: str, padding: Sequence[int],
                            dilation: Sequence[int], groups: int) -> Tensor:
    return _t(_api.conv2d_backward_filter(
        _np(x, "x"), _np(grad_out, "grad_out"), _ints(weight_shape), _ints(stride),
        unpads4(padding_mode, padding), _ints(dilation), groups))


@_conv2d_backward_filter.register_fake
def _(x, grad_out, weight_shape, stride, padding_mode, padding, dilation, groups):
    return x.new_empty(weight_shape)


@torch.library.custom_op(f"{_NS}::conv2d_backward_bias", mutates_args=())
def _conv2d_backward_bias(grad_out: Tensor) -> Tensor:
    return _t(_api.conv2d_backward_bias(_np(grad_out, "grad_out")))


@_conv2d_backward_bias.register_fake
def _(grad_out):
    return grad_out.new_empty((grad_out.shape[-3],))


def _conv_setup(ctx, inputs, output):
    x, weight, bias, *geometry = inputs
    ctx.save_for_backward(x, weight)
    ctx.geometry = geometry                  # stride, padding_mode, padding, dilation, groups
    ctx.has_bias = bias is not None


def _conv_backward(ctx, gy):
    x, w = ctx.saved_tensors
    gx = gw = gb = None
    if ctx.needs_input_grad[0]:
        gx = _op("conv2d_backward_input")(gy, w, list(x.shape), *ctx.geometry)
    if ctx.needs_input_grad[1]:
        gw = _op("conv2d_backward_filter")(x, gy, list(w.shape), *ctx.geometry)
    if ctx.has_bias and ctx.needs_input_grad[2]:
        gb = _op("conv2d_backward_bias")(gy)
    return gx, gw, gb, None, None, None, None, None


_conv2d.register_autograd(_conv_backward, setup_context=_conv_setup)


# The backward ops are linear in each argument; their adjoints are the other conv kernels.
def _bwd_input_setup(ctx, inputs, output):
    gy, w, _, *geometry = inputs
    ctx.save_for_backward(gy, w)
    ctx.geometry = geometry


def _bwd_input_backward(ctx, g):
    gy, w = ctx.saved_tensors
    ggy = gw = None
    if ctx.needs_input_grad[0]:
        ggy = _op("conv2d")(g, w, None, *ctx.geometry)
    if ctx.needs_input_grad[1]:
        gw = _op("conv2d_backward_filter")(g, gy, list(w.shape), *ctx.geometry)
    return ggy, gw, None, None, None, None, None, None


_conv2d_backward_input.register_autograd(_bwd_input_backward, setup_context=_bwd_input_setup)


def _bwd_filter_setup(ctx, inputs, output):
    x, gy, _, *geometry = inputs
    ctx.save_for_backward(x, gy)
    ctx.geometry = geometry


def _bwd_filter_backward(ctx, g):
    x, gy = ctx.saved_tensors
    gx = ggy = None
    if ctx.needs_input_grad[0]:
        gx = _op("conv2d_backward_input")(gy, g, list(x.shape), *ctx.geometry)
    if ctx.needs_input_grad[1]:
        ggy = _op("conv2d")(x, g, None, *ctx.geometry)
    return gx, ggy, None, None, None, None, None, None


_conv2d_backward_filter.register_autograd(_bwd_filter_backward, setup_context=_bwd_filter_setup)


def _bwd_bias_setup(ctx, inputs, output):
    ctx.shape = inputs[0].shape


def _bwd_bias_backward(ctx, g):
    return g[:, None, None].expand(ctx.shape)


_conv2d_backward_bias.register_autograd(_bwd_bias_backward, setup_context=_bwd_bias_setup)


@torch.library.custom_op(f"{_NS}::conv_transpose2d", mutates_args=())
def _conv_transpose2d(x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: Sequence[int],
                      padding_mode: str, padding: Sequence[int], output_padding: Sequence[int],
                      dilation: Sequence[int], groups: int,
                      output_size: Optional[Sequence[int]]) -> Tensor:
    return _t(_api.conv_transpose2d(
        _np(x, "x"), _np(weight, "weight"), _opt(bias, "bias"), _ints(stride),
        unpads4(padding_mode, padding), _ints(output_padding), _ints(dilation), groups,
        output_size=_ints(output_size)))


@_conv_transpose2d.register_fake
def _(x, weight, bias, stride, padding_mode, padding, output_padding, dilation, groups,
      output_size):
    (shape,) = dry_run(_api.conv_transpose2d, _batch(x), [
        _spec(x, "x"), _spec(weight, "weight", False),
        None if bias is None else _spec(bias, "bias", False), _ints(stride),
        unpads4(padding_mode, padding), _ints(output_padding), _ints(dilation), groups],
        {"output_size": _ints(output_size)})
    return x.new_empty(shape)


def _convt_setup(ctx, inputs, output):
    x, weight, bias, stride, padding_mode, padding, output_padding, dilation, groups, \
        output_size = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None
    # The forward conv this transposes (output-shaped -> x-shaped), padding resolved on
    # the output size as _api does; with output_padding >= stride it yields extra
    # rows/cols, which saw zeros in the forward pass.
    kh, kw = int(weight.shape[-2]), int(weight.shape[-1])
    g = _api._geometry(int(output.shape[-2]), int(output.shape[-1]), (kh, kw), stride,
                       unpads4(padding_mode, padding), dilation)
    ctx.fwd_hw = (g.oh, g.ow)
    ctx.geometry = (stride, "explicit", [g.pt, g.pb, g.pl, g.pr], dilation, groups)


def _convt_backward(ctx, gy):
    x, w = ctx.saved_tensors
    h, wd = x.shape[-2], x.shape[-1]
    gx = gw = gb = None
    if ctx.needs_input_grad[0]:
        gx = _op("conv2d")(gy, w, None, *ctx.geometry)[..., :h, :wd]
    if ctx.needs_input_grad[1]:
        fh, fw = ctx.fwd_hw
        xe = F.pad(x, (0, fw - wd, 0, fh - h)) if (fh, fw) != (h, wd) else x
        gw = _op("conv2d_backward_filter")(gy, xe, list(w.shape), *ctx.geometry)
    if ctx.has_bias and ctx.needs_input_grad[2]:
        gb = _op("conv2d_backward_bias")(gy)
    return gx, gw, gb, None, None, None, None, None, None, None


_conv_transpose2d.register_autograd(_convt_backward, setup_context=_convt_setup)

# ---------------------------------------------------------------------------------
# pooling ops


@torch.library.custom_op(f"{_NS}::max_pool2d_with_indices", mutates_args=())
def _max_pool2d_with_indices(x: Tensor, kernel_size: Sequence[int], stride: Optional[Sequence[int]],
                             padding_mode: str, padding: Sequence[int], dilation: Sequence[int],
                             ceil_mode: bool) -> tuple[Tensor, Tensor]:
    y, idx = _api.max_pool2d(_np(x, "x"), _ints(kernel_size), _ints(stride),
                             unpads4(padding_mode, padding), _ints(dilation), ceil_mode,
                             return_indices=True)
    return _t(y), _t(idx)


@_max_pool2d_with_indices.register_fake
def _(x, kernel_size, stride, padding_mode, padding, dilation, ceil_mode):
    ys, _ = dry_run(_api.max_pool2d, _batch(x), [
        _spec(x, "x"), _ints(kernel_size), _ints(stride), unpads4(padding_mode, padding),
        _ints(dilation), ceil_mode], {"return_indices": True})
    return x.new_empty(ys), x.new_empty(ys, dtype=torch.int64)


@torch.library.custom_op(f"{_NS}::max_pool2d_backward", mutates_args=())
def _max_pool2d_backward(grad_out: Tensor, indices: Tensor, input_shape: Sequence[int]) -> Tensor:
    return _t(_api.max_pool2d_backward(_np(grad_out, "grad_out"), _np(indices, "indices"),
                                       _ints(input_shape)))


@_max_pool2d_backward.register_fake
def _(grad_out, indices, input_shape):
    return grad_out.new_empty(input_shape)


def _maxpool_setup(ctx, inputs, output):
    x = inputs[0]
    _, idx = output
    ctx.mark_non_differentiable(idx)
    ctx.save_for_backward(idx)
    ctx.input_shape = list(x.shape)


def _maxpool_backward(ctx, gy, _gidx):
    (idx,) = ctx.saved_tensors
    return _op("max_pool2d_backward")(gy, idx, ctx.input_shape), None, None, None, None, None, None


_max_pool2d_with_indices.register_autograd(_maxpool_backward, setup_context=_maxpool_setup)


@torch.library.custom_op(f"{_NS}::max_unpool2d", mutates_args=())
def _max_unpool2d(x: Tensor, indices: Tensor, kernel_size: Sequence[int],
                  stride: Optional[Sequence[int]], padding_mode: str, padding: Sequence[int],
                  output_size: Optional[Sequence[int]]) -> Tensor:
    return _t(_api.max_unpool2d(_np(x, "x"), _np(indices, "indices"), _ints(kernel_size),
                                _ints(stride), unpads4(padding_mode, padding),
                                _ints(output_size)))


@_max_unpool2d.register_fake
def _(x, indices, kernel_size, stride, padding_mode, padding, output_size):
    (shape,) = dry_run(_api.max_unpool2d, _batch(x), [
        _spec(x, "x"), _spec(indices, "indices"), _ints(kernel_size), _ints(stride),
        unpads4(padding_mode, padding), _ints(output_size)])
    return x.new_empty(shape)


@torch.library.custom_op(f"{_NS}::max_unpool2d_backward", mutates_args=())
def _max_unpool2d_backward(grad_out: Tensor, indices: Tensor) -> Tensor:
    return _t(_api.max_unpool2d_backward(_np(grad_out, "grad_out"), _np(indices, "indices")))


@_max_unpool2d_backward.register_fake
def _(grad_out, indices):
    return grad_out.new_empty(indices.shape)


def _unpool_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])


def _unpool_backward(ctx, gy):
    (idx,) = ctx.saved_tensors
    return _op("max_unpool2d_backward")(gy, idx), None, None, None, None, None, None


_max_unpool2d.register_autograd(_unpool_backward, setup_context=_unpool_setup)


# max_pool2d_backward scatters-adds to the indices and max_unpool2d_backward gathers from
# them: each is the other's adjoint, which gives the double-backward formulas.
def _mpb_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])


def _mpb_backward(ctx, g):
    (idx,) = ctx.saved_tensors
    return _op("max_unpool2d_backward")(g, idx), None, None


_max_pool2d_backward.register_autograd(_mpb_backward, setup_context=_mpb_setup)


def _mub_setup(ctx, inputs, output):
    gy, idx = inputs
    ctx.save_for_backward(idx)
    ctx.shape = list(gy.shape)


def _mub_backward(ctx, g):
    (idx,) = ctx.saved_tensors
    return _op("max_pool2d_backward")(g, idx, ctx.shape), None


_max_unpool2d_backward.register_autograd(_mub_backward, setup_context=_mub_setup)


@torch.library.custom_op(f"{_NS}::avg_pool2d", mutates_args=())
def _avg_pool2d(x: Tensor, kernel_size: Sequence[int], stride: Optional[Sequence[int]],
                padding_mode: str, padding: Sequence[int], dilation: Sequence[int],
                ceil_mode: bool, count_include_pad: bool,
                divisor_override: Optional[int]) -> Tensor:
    return _t(_api.avg_pool2d(_np(x, "x"), _ints(kernel_size), _ints(stride),
                              unpads4(padding_mode, padding), _ints(dilation), ceil_mode,
                              count_include_pad, divisor_override))


@_avg_pool2d.register_fake
def _(x, kernel_size, stride, padding_mode, padding, dilation, ceil_mode, count_include_pad,
      divisor_override):
    (shape,) = dry_run(_api.avg_pool2d, _batch(x), [
        _spec(x, "x"), _ints(kernel_size), _ints(stride), unpads4(padding_mode, padding),
        _ints(dilation), ceil_mode, count_include_pad, divisor_override])
    return x.new_empty(shape)


@torch.library.custom_op(f"{_NS}::avg_pool2d_backward", mutates_args=())
def _avg_pool2d_backward(grad_out: Tensor, input_shape: Sequence[int], kernel_size: Sequence[int],
                         stride: Optional[Sequence[int]], padding_mode: str,
                         padding: Sequence[int], dilation: Sequence[int], ceil_mode: bool,
                         count_include_pad: bool, divisor_override: Optional[int]) -> Tensor:
    return _t(_api.avg_pool2d_backward(
        _np(grad_out, "grad_out"), _ints(input_shape), _ints(kernel_size), _ints(stride),
        unpads4(padding_mode, padding), _ints(dilation), ceil_mode, count_include_pad,
        divisor_override))


@_avg_pool2d_backward.register_fake
def _(grad_out, input_shape, *args):
    return grad_out.new_empty(input_shape)


def _avg_setup(ctx, inputs, output):
    ctx.input_shape = list(inputs[0].shape)
    ctx.args = inputs[1:]


def _avg_backward(ctx, gy):
    gx = _op("avg_pool2d_backward")(gy, ctx.input_shape, *ctx.args)
    return (gx,) + (None,) * 8


_avg_pool2d.register_autograd(_avg_backward, setup_context=_avg_setup)


def _avgb_setup(ctx, inputs, output):
    ctx.args = inputs[2:]


def _avgb_backward(ctx, g):
    return (_op("avg_pool2d")(g, *ctx.args),) + (None,) * 9


_avg_pool2d_backward.register_autograd(_avgb_backward, setup_context=_avgb_setup)

#: The registered forward ops, by name (``torch.ops.aekernels.<name>``).
OPS = {
    "conv2d": _conv2d, "conv_transpose2d": _conv_transpose2d,
    "max_pool2d_with_indices": _max_pool2d_with_indices, "avg_pool2d": _avg_pool2d,
    "max_unpool2d": _max_unpool2d,
}

# ---------------------------------------------------------------------------------
# functional API (torch.nn.functional's signatures)


def _bool(v: Any, name: str) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {v!r}")
    return bool(v)


def _pair_or_none(v: Any, name: str) -> Optional[list[int]]:
    return None if v is None else list(_api._pair(v, name))


def _size_or_none(v: Any, name: str) -> Optional[list[int]]:
    return None if v is None else list(_api._shape_arg(v, name, (2, 3, 4)))


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """``torch.nn.functional.conv2d`` on the aekernels kernels.

    ``padding`` may also be "same_lower" or ((top, bottom), (left, right)), and "same"
    works with any stride (extra row/col at the bottom/right, as TF).
    """
    mode, pads = pads4(padding)
    return _conv2d(input, weight, bias, list(_api._pair(stride, "stride")), mode, pads,
                   list(_api._pair(dilation, "dilation")), _api._int(groups, "groups"))


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                     stride: Any = 1, padding: Any = 0, output_padding: Any = 0,
                     groups: int = 1, dilation: Any = 1, *,
                     output_size: Optional[Sequence[int]] = None) -> Tensor:
    """``torch.nn.functional.conv_transpose2d`` on the aekernels kernels.

    ``weight`` is (C_in, C_out/groups, kh, kw) as in PyTorch.  ``output_size`` ((H, W)
    or a full shape) chooses ``output_padding`` as ``nn.ConvTranspose2d`` does.
    """
    mode, pads = pads4(padding)
    return _conv_transpose2d(
        input, weight, bias, list(_api._pair(stride, "stride")), mode, pads,
        list(_api._pair(output_padding, "output_padding", 0)),
        list(_api._pair(dilation, "dilation")), _api._int(groups, "groups"),
        _size_or_none(output_size, "output_size"))


def max_pool2d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None,
                            padding: Any = 0, dilation: Any = 1,
                            ceil_mode: bool = False) -> tuple[Tensor, Tensor]:
    """Max pooling returning (values, int64 indices ``h * W + w`` in each plane)."""
    mode, pads = pads4(padding)
    return _max_pool2d_with_indices(
        input, list(_api._pair(kernel_size, "kernel_size")), _pair_or_none(stride, "stride"),
        mode, pads, list(_api._pair(dilation, "dilation")), _bool(ceil_mode, "ceil_mode"))


def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """``torch.nn.functional.max_pool2d`` on the aekernels kernels."""
    y, idx = max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return (y, idx) if return_indices else y


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None, *, dilation: Any = 1) -> Tensor:
    """``torch.nn.functional.avg_pool2d`` on the aekernels kernels (plus ``dilation``)."""
    mode, pads = pads4(padding)
    div = None if divisor_override is None else _api._int(divisor_override, "divisor_override")
    return _avg_pool2d(
        input, list(_api._pair(kernel_size, "kernel_size")), _pair_or_none(stride, "stride"),
        mode, pads, list(_api._pair(dilation, "dilation")), _bool(ceil_mode, "ceil_mode"),
        _bool(count_include_pad, "count_include_pad"), div)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None,
                 padding: Any = 0, output_size: Optional[Sequence[int]] = None) -> Tensor:
    """``torch.nn.functional.max_unpool2d`` on the aekernels kernels."""
    mode, pads = pads4(padding)
    return _max_unpool2d(input, indices, list(_api._pair(kernel_size, "kernel_size")),
                         _pair_or_none(stride, "stride"), mode, pads,
                         _size_or_none(output_size, "output_size"))


# ---------------------------------------------------------------------------------
# layers: the torch layers with forward() replaced


class Conv2d(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` computed by aekernels (same parameters and state_dict)."""

    def forward(self, input: Tensor) -> Tensor:
        if self.padding_mode != "zeros":   # torch pads ("reflect", ...), we convolve
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv2d(input, self.weight, self.bias, self.stride, 0, self.dilation,
                          self.groups)
        return conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)


class ConvTranspose2d(torch.nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` computed by aekernels (same parameters and state_dict)."""

    def forward(self, input: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        if self.padding_mode != "zeros":
            raise ValueError("Only 'zeros' padding mode is supported for ConvTranspose2d")
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                self.output_padding, self.groups, self.dilation,
                                output_size=output_size)


class MaxPool2d(torch.nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` computed by aekernels (``return_indices`` supported)."""

    def forward(self, input: Tensor):
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)


class AvgPool2d(torch.nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` computed by aekernels."""

    def forward(self, input: Tensor) -> Tensor:
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)


class MaxUnpool2d(torch.nn.MaxUnpool2d):
    """``torch.nn.MaxUnpool2d`` computed by aekernels."""

    def forward(self, input: Tensor, indices: Tensor,
                output_size: Optional[Sequence[int]] = None) -> Tensor:
        return max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding,
                            output_size)
