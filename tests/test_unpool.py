"""max_unpool2d and its backward vs the reference (bitwise), and the pool -> unpool round
trip with recorded indices."""
import zlib

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R
from cases import UNPOOL_CASES


def _pooled(p):
    """Pool a distinct-valued image with the case's geometry: (x, y, indices) in NCHW."""
    seed = zlib.crc32(repr(sorted(p.items())).encode())
    x = H.distinct((p["N"], p["C"], p["H"], p["W"]), seed)
    y, idx = R.max_pool2d(x, p["kernel_size"], p["stride"], p["padding"])
    return x, y, idx


def _output_size(p, x_shape, layout):
    if p["output_size"] == "full":
        return H.shape(x_shape, layout)
    return p["output_size"]


@pytest.mark.parametrize("p", UNPOOL_CASES)
def test_max_unpool2d_bitwise(backend, dtype, layout, p):
    x, y, idx = _pooled(p)
    size = None if p["output_size"] is None else x.shape[2:]
    ref = R.max_unpool2d(y, idx, p["kernel_size"], p["stride"], p["padding"], size)
    u = aekernels.max_unpool2d(H.data(y, layout, dtype), R.from_nchw(idx, layout),
                               p["kernel_size"], p["stride"], p["padding"],
                               output_size=_output_size(p, x.shape, layout), layout=layout)
    H.assert_bitwise(u, R.from_nchw(ref, layout), dtype, what="max_unpool2d")


@pytest.mark.parametrize("p", UNPOOL_CASES)
def test_max_unpool2d_backward_bitwise(backend, dtype, layout, p):
    x, y, idx = _pooled(p)
    size = None if p["output_size"] is None else x.shape[2:]
    u_shape = R.max_unpool2d(y, idx, p["kernel_size"], p["stride"], p["padding"], size).shape
    gy = H.randn(u_shape, 3)
    ref = R.max_unpool2d_backward(gy, idx)
    gx = aekernels.max_unpool2d_backward(H.data(gy, layout, dtype), R.from_nchw(idx, layout),
                                         layout=layout)
    H.assert_bitwise(gx, R.from_nchw(ref, layout), dtype, what="max_unpool2d_backward")


@pytest.mark.parametrize("p", UNPOOL_CASES)
def test_unpool_of_pool_places_maxima_at_recorded_positions(backend, dtype, layout, p):
    """unpool(pool(x)) with the package's own indices: each maximum back at its position,
    zeros elsewhere (the round trip of a conv autoencoder)."""
    x, _, _ = _pooled(p)
    xl = H.data(x, layout, dtype)
    y, idx = aekernels.max_pool2d(xl, p["kernel_size"], p["stride"], p["padding"],
                                  return_indices=True, layout=layout)
    u = aekernels.max_unpool2d(y, idx, p["kernel_size"], p["stride"], p["padding"],
                               output_size=x.shape[2:], layout=layout)
    u = R.to_nchw(u, layout)
    x_n = x.astype(dtype)
    assert u.shape == x.shape
    kept = u != 0
    np.testing.assert_array_equal(u[kept], x_n[kept])          # maxima where they were
    y_n = R.to_nchw(y, layout)
    idx_n = idx if layout == "NCHW" else idx.transpose(0, 3, 1, 2)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            plane = u[n, c].ravel()
            np.testing.assert_array_equal(plane[idx_n[n, c].ravel()], y_n[n, c].ravel())
            others = np.ones(plane.size, bool)
            others[idx_n[n, c].ravel()] = False
            assert np.all(plane[others] == 0)


def test_max_unpool2d_duplicate_indices_last_write_wins(backend, dtype, layout):
    y = np.arange(1.0, 9.0).reshape(1, 2, 2, 2)
    idx = np.zeros((1, 2, 2, 2), np.int64)
    idx[0, 1] = [[3, 3], [0, 3]]
    ref = R.max_unpool2d(y, idx, 2)
    assert ref[0, 0, 0, 0] == 4.0 and ref[0, 1, 0, 3] == 8.0 and ref[0, 1, 0, 0] == 7.0
    u = aekernels.max_unpool2d(H.data(y, layout, dtype), R.from_nchw(idx, layout), 2,
                               layout=layout)
    H.assert_bitwise(u, R.from_nchw(ref, layout), dtype)


def test_max_unpool2d_3d_input_returns_3d(backend, dtype, layout):
    p = UNPOOL_CASES[0].values[0]
    x, y, idx = _pooled(p)
    ref = R.max_unpool2d(y[:1], idx[:1], 2)
    u = aekernels.max_unpool2d(H.data(y[:1], layout, dtype)[0], R.from_nchw(idx[:1], layout)[0],
                               2, layout=layout)
    assert u.ndim == 3
    H.assert_bitwise(u, R.from_nchw(ref, layout)[0], dtype)
    g = aekernels.max_unpool2d_backward(H.data(ref, layout, dtype)[0],
                                        R.from_nchw(idx[:1], layout)[0], layout=layout)
    assert g.ndim == 3
    H.assert_bitwise(g, R.from_nchw(y[:1], layout)[0], dtype)


def test_max_unpool2d_out_is_used_and_returned(backend, dtype, layout):
    p = UNPOOL_CASES[0].values[0]
    x, y, idx = _pooled(p)
    ref = R.from_nchw(R.max_unpool2d(y, idx, 2), layout)
    out = H.filled_out(ref.shape, dtype)
    u = aekernels.max_unpool2d(H.data(y, layout, dtype), R.from_nchw(idx, layout), 2,
                               layout=layout, out=out)
    assert u is out
    H.assert_bitwise(out, ref, dtype)
    out = H.filled_out(R.from_nchw(y, layout).shape, dtype)
    g = aekernels.max_unpool2d_backward(H.data(R.to_nchw(ref, layout), layout, dtype),
                                        R.from_nchw(idx, layout), layout=layout, out=out)
    assert g is out
    H.assert_bitwise(out, R.from_nchw(y, layout), dtype)


def test_max_unpool2d_empty_batch(backend, dtype, layout):
    y = np.zeros(H.shape((0, 3, 4, 4), layout), dtype)
    idx = np.zeros(y.shape, np.int64)
    u = aekernels.max_unpool2d(y, idx, 2, layout=layout)
    assert u.shape == H.shape((0, 3, 8, 8), layout) and u.dtype == dtype
    g = aekernels.max_unpool2d_backward(u, idx, layout=layout)
    assert g.shape == y.shape and g.dtype == dtype
