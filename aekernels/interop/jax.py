"""JAX adapter: aekernels kernels as differentiable JAX functions.

``conv2d``, ``conv_transpose2d``, ``max_pool2d``, ``avg_pool2d`` and ``max_unpool2d``
take the NumPy API's arguments (same order, same ``layout="NCHW"|"NHWC"``, weights
OIHW / HWIO) and ``jax.Array`` inputs on the CPU.  Each kernel runs through
``jax.pure_callback`` and has a ``jax.custom_vjp`` whose backward pass calls the
aekernels backward kernels; those are ``custom_vjp`` functions too, so higher-order
derivatives work.  They compose with ``jax.jit``, ``jax.grad`` and ``jax.vmap``::

    import jax, jax.numpy as jnp
    from aekernels.interop import jax as aej

    def loss(w, x):                               # x (N, H, W, C), w HWIO
        h = jax.nn.relu(aej.conv2d(x, w, padding="same", layout="NHWC"))
        return aej.max_pool2d(h, 2, layout="NHWC").sum()

    x = jnp.ones((8, 28, 28, 1)); w = jnp.ones((3, 3, 1, 16)) / 9
    g = jax.jit(jax.grad(loss))(w, x)             # gradients from the aekernels kernels

Notes

* Under ``jax.vmap`` the callback runs once per mapped element
  (``vmap_method="sequential"``); the kernels' own batch axis N is the fast way to
  batch, so prefer it.
* float64 needs ``jax.config.update("jax_enable_x64", True)`` as usual.  Without it,
  max-pool indices are int32 in JAX (each plane must have < 2**31 positions) and are
  widened to int64 for the kernels.
* Shapes and argument errors come from the NumPy API (run on an empty batch at trace
  time), so bad arguments raise the same ``ValueError``/``TypeError``.
* ``max_pool2d`` under ``custom_vjp`` always records indices (for the backward pass).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .. import _api
from ._shapes import Spec, dry_run

__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "max_unpool2d"]

_VMAP = "sequential"


def _call(fn, shape: Sequence[int], dtype: Any, *arrays, **kwargs):
    """``fn(*arrays, **kwargs)`` on the host, as a JAX value of ``shape``/``dtype``."""
    return jax.pure_callback(functools.partial(_host, fn, kwargs),
                             jax.ShapeDtypeStruct(tuple(shape), dtype), *arrays,
                             vmap_method=_VMAP)


def _host(fn, kwargs, *arrays):
    return fn(*arrays, **kwargs)


def _spec(a: Any, batched: bool = True) -> Spec:
    return Spec(tuple(a.shape), np.dtype(a.dtype), batched)


def _batch(a: Any) -> int:
    return a.shape[0] if a.ndim else 0


def _index_dtype() -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(np.int64))


def _i64(idx: Any) -> np.ndarray:
    return np.asarray(idx, dtype=np.int64)


def _spatial(shape: Sequence[int], nhwc: bool) -> tuple[int, int]:
    return (shape[-3], shape[-2]) if nhwc else (shape[-2], shape[-1])


# ---------------------------------------------------------------------------------
# convolution: conv2d and its two backward kernels, each the others' adjoint


class _Conv(NamedTuple):
    """Hashable conv geometry (static under jit/custom_vjp)."""
    stride: tuple
    padding: Any
    dilation: tuple
    groups: int
    layout: str

    def kwargs(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, layout=self.layout)


def _conv_shape(p: _Conv, x: Any, w: Any, b: Any = None) -> tuple:
    (shape,) = dry_run(_api.conv2d, _batch(x), [
        _spec(x), _spec(w, False), None if b is None else _spec(b, False)], p.kwargs())
    return shape


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _conv(p: _Conv, x, w):
    return _call(_api.conv2d, _conv_shape(p, x, w), x.dtype, x, w, **p.kwargs())


def _conv_fwd(p, x, w):
    return _conv(p, x, w), (x, w)


def _conv_bwd(p, res, gy):
    x, w = res
    return _bwd_input(p, tuple(x.shape), gy, w), _bwd_filter(p, tuple(w.shape), x, gy)


_conv.defvjp(_conv_fwd, _conv_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _bwd_input(p: _Conv, input_shape: tuple, gy, w):
    return _call(_api.conv2d_backward_input, input_shape, gy.dtype, gy, w,
                 input_shape=input_shape, **p.kwargs())


def _bwd_input_fwd(p, input_shape, gy, w):
    return _bwd_input(p, input_shape, gy, w), (gy, w)


def _bwd_input_bwd(p, input_shape, res, g):
    gy, w = res
    return _conv(p, g, w), _bwd_filter(p, tuple(w.shape), g, gy)


_bwd_input.defvjp(_bwd_input_fwd, _bwd_input_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _bwd_filter(p: _Conv, weight_shape: tuple, x, gy):
    return _call(_api.conv2d_backward_filter, weight_shape, x.dtype, x, gy,
                 weight_shape=weight_shape, **p.kwargs())


def _bwd_filter_fwd(p, weight_shape, x, gy):
    return _bwd_filter(p, weight_shape, x, gy), (x, gy)


def _bwd_filter_bwd(p, weight_shape, res, g):
    x, gy = res
    return _bwd_input(p, tuple(x.shape), gy, g), _conv(p, x, g)


_bwd_filter.defvjp(_bwd_filter_fwd, _bwd_filter_bwd)


def _conv_params(stride, padding, dilation, groups, layout) -> _Conv:
    _api._nhwc(layout)
    return _Conv(_api._pair(stride, "stride"), _api._padding(padding),
                 _api._pair(dilation, "dilation"), _api._int(groups, "groups"), layout)


def _add_bias(y, bias, nhwc: bool):
    return y + (bias if nhwc else bias[:, None, None])


def conv2d(x, weight, bias=None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1, *, layout: str = "NCHW"):
    """``aekernels.conv2d`` as a differentiable JAX function.

    Parameters
    ----------
    x : jax.Array
        (N, C, H, W) for NCHW, (N, H, W, C) for NHWC; 3-D means a batch of one.
    weight : jax.Array
        OIHW for NCHW, HWIO for NHWC.
    bias : jax.Array, optional
        (K,).
    stride, padding, dilation, groups, layout
        As ``aekernels.conv2d``.

    Returns
    -------
    jax.Array
    """
    p = _conv_params(stride, padding, dilation, groups, layout)
    _conv_shape(p, x, weight, bias)           # the NumPy API's checks, bias included
    y = _conv(p, x, weight)
    return y if bias is None else _add_bias(y, bias, layout == "NHWC")


def conv_transpose2d(x, weight, bias=None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1, *,
                     layout: str = "NCHW", output_size: Optional[Sequence[int]] = None):
    """``aekernels.conv_transpose2d`` as a differentiable JAX function.

    It is ``conv2d_backward_input`` of the forward conv whose weight it takes
    ((C_in, C_out/groups, kh, kw) for NCHW, (kh, kw, C_out/groups, C_in) for NHWC), so
    its derivatives are that conv's kernels.
    """
    nhwc = _api._nhwc(layout)
    (shape,) = dry_run(_api.conv_transpose2d, _batch(x), [
        _spec(x), _spec(weight, False), None if bias is None else _spec(bias, False),
        stride, padding, output_padding, dilation, groups],
        {"layout": layout, "output_size": output_size})
    # The forward conv this transposes (output-shaped -> x-shaped), padding resolved on
    # the output size as _api does.
    kh, kw = (weight.shape[0], weight.shape[1]) if nhwc else (weight.shape[2], weight.shape[3])
    oh, ow = _spatial(shape, nhwc)
    g = _api._geometry(oh, ow, (kh, kw), stride, padding, dilation)
    p = _Conv((g.sh, g.sw), ((g.pt, g.pb), (g.pl, g.pr)), (g.dh, g.dw),
              _api._int(groups, "groups"), layout)
    # With output_padding >= stride that conv has outputs x does not cover: zeros.
    h, wd = _spatial(x.shape, nhwc)
    if (g.oh, g.ow) != (h, wd):
        extra = [(0, 0)] * x.ndim
        extra[-3 if nhwc else -2] = (0, g.oh - h)
        extra[-2 if nhwc else -1] = (0, g.ow - wd)
        x = jnp.pad(x, extra)
    y = _bwd_input(p, tuple(shape), x, weight)
    return y if bias is None else _add_bias(y, bias, nhwc)


# ---------------------------------------------------------------------------------
# pooling


class _Pool(NamedTuple):
    kernel_size: tuple
    stride: Optional[tuple]
    padding: Any
    dilation: tuple
    ceil_mode: bool
    layout: str

    def kwargs(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode, layout=self.layout)


def _pool_params(kernel_size, stride, padding, dilation, ceil_mode, layout) -> _Pool:
    _api._nhwc(layout)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    return _Pool(_api._pair(kernel_size, "kernel_size"),
                 None if stride is None else _api._pair(stride, "stride"),
                 _api._padding(padding), _api._pair(dilation, "dilation"), bool(ceil_mode),
                 layout)


def _max_pool_host(p: _Pool, x):
    y, idx = _api.max_pool2d(x, return_indices=True, **p.kwargs())
    if idx.dtype != _index_dtype():
        h, w = _spatial(x.shape, p.layout == "NHWC")
        if h * w > np.iinfo(np.int32).max:
            raise ValueError(f"max_pool2d: planes of {h}x{w} positions need int64 indices; "
                             "enable jax_enable_x64")
        idx = idx.astype(_index_dtype())
    return y, idx


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _max_pool(p: _Pool, x):
    ys, _ = dry_run(_api.max_pool2d, _batch(x), [_spec(x)], dict(p.kwargs(), return_indices=True))
    return jax.pure_callback(functools.partial(_max_pool_host, p),
                             (jax.ShapeDtypeStruct(ys, x.dtype),
                              jax.ShapeDtypeStruct(ys, _index_dtype())), x, vmap_method=_VMAP)


def _max_pool_fwd(p, x):
    y, idx = _max_pool(p, x)
    return (y, idx), (idx, tuple(x.shape))


def _max_pool_bwd(p, res, cts):
    idx, shape = res
    gy, _ = cts
    return (_scatter_add(p.layout, shape, gy, idx),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


# max_pool2d_backward (scatter-add to the indices) and max_unpool2d_backward (gather)
# are each other's adjoints.
@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _scatter_add(layout: str, input_shape: tuple, gy, idx):
    return _call(lambda g, i: _api.max_pool2d_backward(g, _i64(i), input_shape, layout=layout),
                 input_shape, gy.dtype, gy, idx)


def _scatter_add_fwd(layout, input_shape, gy, idx):
    return _scatter_add(layout, input_shape, gy, idx), idx


def _scatter_add_bwd(layout, input_shape, idx, g):
    return _gather(layout, g, idx), None


_scatter_add.defvjp(_scatter_add_fwd, _scatter_add_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _gather(layout: str, gy, idx):
    return _call(lambda g, i: _api.max_unpool2d_backward(g, _i64(i), layout=layout),
                 idx.shape, gy.dtype, gy, idx)


def _gather_fwd(layout, gy, idx):
    return _gather(layout, gy, idx), (idx, tuple(gy.shape))


def _gather_bwd(layout, res, g):
    idx, shape = res
    return _scatter_add(layout, shape, g, idx), None


_gather.defvjp(_gather_fwd, _gather_bwd)


def max_pool2d(x, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False, *, layout: str = "NCHW"):
    """``aekernels.max_pool2d`` as a differentiable JAX function.

    With ``return_indices`` also returns the (non-differentiable) indices, int64 with
    x64 enabled and int32 otherwise.
    """
    y, idx = _max_pool(_pool_params(kernel_size, stride, padding, dilation, ceil_mode, layout), x)
    return (y, idx) if return_indices else y


class _Avg(NamedTuple):
    pool: _Pool
    count_include_pad: bool
    divisor_override: Optional[int]

    def kwargs(self) -> dict:
        return dict(self.pool.kwargs(), count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _avg_pool(p: _Avg, x):
    (shape,) = dry_run(_api.avg_pool2d, _batch(x), [_spec(x)], p.kwargs())
    return _call(_api.avg_pool2d, shape, x.dtype, x, **p.kwargs())


def _avg_pool_fwd(p, x):
    return _avg_pool(p, x), tuple(x.shape)


def _avg_pool_bwd(p, shape, gy):
    return (_avg_pool_backward(p, shape, gy),)


_avg_pool.defvjp(_avg_pool_fwd, _avg_pool_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _avg_pool_backward(p: _Avg, input_shape: tuple, gy):
    return _call(_api.avg_pool2d_backward, input_shape, gy.dtype, gy,
                 input_shape=input_shape, **p.kwargs())


def _avg_pool_backward_fwd(p, input_shape, gy):
    return _avg_pool_backward(p, input_shape, gy), None


def _avg_pool_backward_bwd(p, input_shape, _, g):
    return (_avg_pool(p, g),)


_avg_pool_backward.defvjp(_avg_pool_backward_fwd, _avg_pool_backward_bwd)


def avg_pool2d(x, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None, *, layout: str = "NCHW"):
    """``aekernels.avg_pool2d`` as a differentiable JAX function."""
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad must be a bool, got {count_include_pad!r}")
    div = None if divisor_override is None else _api._int(divisor_override, "divisor_override")
    p = _Avg(_pool_params(kernel_size, stride, padding, dilation, ceil_mode, layout),
             bool(count_include_pad), div)
    return _avg_pool(p, x)


class _Unpool(NamedTuple):
    kernel_size: tuple
    stride: Optional[tuple]
    padding: Any
    output_size: Optional[tuple]
    layout: str

    def kwargs(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    output_size=self.output_size, layout=self.layout)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _unpool(p: _Unpool, x, idx):
    (shape,) = dry_run(_api.max_unpool2d, _batch(x),
                       [_spec(x), Spec(tuple(idx.shape), np.int64)], p.kwargs())
    return _call(lambda v, i: _api.max_unpool2d(v, _i64(i), **p.kwargs()), shape, x.dtype, x, idx)


def _unpool_fwd(p, x, idx):
    return _unpool(p, x, idx), idx


def _unpool_bwd(p, idx, gy):
    return _gather(p.layout, gy, idx), None


_unpool.defvjp(_unpool_fwd, _unpool_bwd)


def max_unpool2d(x, indices, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 output_size: Optional[Sequence[int]] = None, *, layout: str = "NCHW"):
    """``aekernels.max_unpool2d`` as a differentiable JAX function (in ``x``).

    ``indices`` as returned by ``max_pool2d(..., return_indices=True)`` (int32 or int64).
    Out-of-range indices raise ``ValueError`` when the kernel runs (inside the callback).
    """
    idx_dtype = np.dtype(indices.dtype)
    if idx_dtype.kind not in "iu":
        raise TypeError(f"indices must be int64 (native byte order), got dtype {idx_dtype}")
    _api._nhwc(layout)
    p = _Unpool(_api._pair(kernel_size, "kernel_size"),
                None if stride is None else _api._pair(stride, "stride"), _api._padding(padding),
                None if output_size is None else tuple(_api._shape_arg(output_size, "output_size",
                                                                       (2, 3, 4))),
                layout)
    return _unpool(p, x, indices)
