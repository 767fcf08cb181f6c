"""Data generators, layout conversion and the tolerance rules of TESTING.md."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

import aekernels
import reference as R

EPS32 = 2.0 ** -24


def randn(shape, seed, dtype=np.float64):
    """Unit-scale normal data whose values are exactly representable in float32,
    so the float32 and float64 runs see the same numbers (one reference serves both)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(np.float32).astype(dtype)


def distinct(shape, seed, dtype=np.float64):
    """A random permutation of distinct small integers / 8 (exact in float32): no ties."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n).astype(np.float64) / 8.0 - n / 16.0).reshape(shape).astype(dtype)


def tricky(shape, seed):
    """Few distinct levels (many ties), with NaN and -inf sprinkled in (max pooling)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(np.float64)
    r = rng.random(shape)
    x[r < 0.04] = np.nan
    x[(r >= 0.04) & (r < 0.08)] = -np.inf
    return x


def data(a_nchw, layout, dtype):
    """NCHW float64 array -> C-contiguous array in ``layout`` and ``dtype``."""
    return np.ascontiguousarray(R.from_nchw(a_nchw, layout).astype(dtype))


def weight(w_oihw, layout, dtype):
    """OIHW float64 weight -> C-contiguous OIHW (NCHW) or HWIO (NHWC) in ``dtype``."""
    return np.ascontiguousarray(R.weight_from_oihw(w_oihw, layout).astype(dtype))


def shape(shape_nchw, layout):
    return R.shape_from_nchw(shape_nchw, layout)


def assert_close(y, ref, dtype, bound=None, K=1, what="result"):
    """Compare a kernel result with the float64 reference.

    float64: rtol = atol = 1e-10.
    float32: |y - ref| <= 2 * K * 2**-24 * bound + 1e-6 per element, where ``bound`` is
    sum |x_i * w_i| (the reference applied to absolute values) and K the reduction
    length; without a bound (unit-scale data): max(1e-4, 1e-4 * |ref|).
    """
    y = np.asarray(y)
    ref = np.asarray(ref, dtype=np.float64)
    assert isinstance(y, np.ndarray), f"{what}: not an ndarray but {type(y)}"
    assert y.shape == ref.shape, f"{what}: shape {y.shape} != reference {ref.shape}"
    assert y.dtype == np.dtype(dtype), f"{what}: dtype {y.dtype} != {np.dtype(dtype)}"
    y64 = y.astype(np.float64)
    if np.dtype(dtype) == np.float64:
        np.testing.assert_allclose(y64, ref, rtol=1e-10, atol=1e-10, err_msg=what)
        return
    err = np.abs(y64 - ref)
    if bound is not None:
        tol = 2.0 * K * EPS32 * np.asarray(bound, dtype=np.float64) + 1e-6
    else:
        tol = np.maximum(1e-4, 1e-4 * np.abs(ref))
    bad = ~(err <= tol)          # NaN in y counts as bad
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())}/{bad.size} elements out of tolerance; first at "
            f"{i}: got {y64[i]!r}, reference {ref[i]!r}, |err| {err[i]:.3g} > tol {tol[i]:.3g}")


def assert_bitwise(y, ref, dtype, what="result"):
    """Exact equality (NaN == NaN) after casting the reference to ``dtype``."""
    y = np.asarray(y)
    ref = np.asarray(ref)
    assert y.shape == ref.shape, f"{what}: shape {y.shape} != reference {ref.shape}"
    assert y.dtype == np.dtype(dtype), f"{what}: dtype {y.dtype} != {np.dtype(dtype)}"
    np.testing.assert_array_equal(y, ref.astype(dtype), err_msg=what, strict=True)


def assert_same_bits_for_thread_counts(compute, counts=(1, 2, 3)):
    """compute() at each native thread count returns bitwise the same array (the caller's
    fixture restores the thread count)."""
    results = []
    for threads in counts:
        aekernels.set_num_threads(threads)
        results.append(compute())
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def filled_out(shape_, dtype, value=np.nan):
    """A preallocated out= array full of ``value`` (kernels must overwrite every element)."""
    out = np.empty(shape_, dtype=dtype)
    out[...] = value
    return out


def check_max_pool2d(x, layout, dtype, what, **geom):
    """max_pool2d of the float64 NCHW array x in ``layout`` / ``dtype``: values and
    indices (and the values of return_indices=False) bitwise equal to the reference."""
    y_ref, i_ref = R.max_pool2d(x, **geom)
    xd = data(x, layout, dtype)
    y, idx = aekernels.max_pool2d(xd, **geom, return_indices=True, layout=layout)
    assert_bitwise(y, R.from_nchw(y_ref, layout), dtype, what=f"{what} values")
    assert_bitwise(idx, R.from_nchw(i_ref, layout), np.int64, what=f"{what} indices")
    y_only = aekernels.max_pool2d(xd, **geom, layout=layout)
    assert_bitwise(y_only, R.from_nchw(y_ref, layout), dtype, what=f"{what} values only")


class ConvProblem(NamedTuple):
    """A forward conv2d and its backward-filter in float64 NCHW, with the references and
    their bounds (the reference applied to absolute values, see assert_close)."""
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    gy: np.ndarray
    y: np.ndarray
    y_bound: np.ndarray
    gw: np.ndarray
    gw_bound: np.ndarray


def conv_problem(shape, seed):
    """shape = (N, C, H, W, K, (kh, kw), stride, padding, dilation, groups)."""
    n, c, h, w, k, ks, s, p, d, g = shape
    a = dict(stride=s, padding=p, dilation=d, groups=g)
    x, wt, b = randn((n, c, h, w), seed), randn((k, c // g) + ks, seed + 1), randn((k,), seed + 2)
    y = R.conv2d(x, wt, b, **a)
    gy = randn(y.shape, seed + 3)
    return ConvProblem(x, wt, b, gy, y, R.conv2d(np.abs(x), np.abs(wt), np.abs(b), **a),
                       R.conv2d_backward_filter(x, gy, wt.shape, **a),
                       R.conv2d_backward_filter(np.abs(x), np.abs(gy), wt.shape, **a))
