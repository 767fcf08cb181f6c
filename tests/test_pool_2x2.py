"""The NCHW 2x2 / stride-2 max-pooling fast path (no padding, no dilation) and the
pooling-index range check, vs the float64 reference.

The fast path takes 4 output columns per step (the last step shifted back to end at the
row's end) and handles the partial last row / column of ceil_mode itself, so the cases
are every H, W in 1..9 plus a few larger ones, in floor and ceil mode, with ties, NaN
and -inf; other geometries must still take the general kernels correctly.
"""
import zlib

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R
from backends import ensure_backend

SIZES = list(range(1, 10)) + [14, 17, 28]


@pytest.mark.parametrize("ceil_mode", [False, True], ids=["floor", "ceil"])
@pytest.mark.parametrize("h", SIZES)
def test_pool22_every_small_size(backend, dtype, layout, h, ceil_mode):
    for w in SIZES:
        if not ceil_mode and (h < 2 or w < 2):
            continue   # no full window: refused (tested in test_bad_input)
        x = H.tricky((2, 3, h, w), zlib.crc32(repr((h, w, ceil_mode)).encode()))
        H.check_max_pool2d(x, layout, dtype, f"{h}x{w} ceil={ceil_mode}", kernel_size=2,
                           ceil_mode=ceil_mode)


@pytest.mark.parametrize("shape", [(1, 1, 28, 28), (1, 5, 7, 7), (1, 1, 2, 2), (1, 1, 1, 1),
                                   (3, 1, 9, 16), (1, 2, 64, 33)])
def test_pool22_batch_one_and_odd_plane_counts(backend, dtype, shape):
    x = H.randn(shape, zlib.crc32(repr(shape).encode()))
    for ceil_mode in (False, True):
        if not ceil_mode and min(shape[2:]) < 2:
            continue
        H.check_max_pool2d(x, "NCHW", dtype, f"{shape} ceil={ceil_mode}", kernel_size=2,
                           stride=2, ceil_mode=ceil_mode)


def test_pool22_ties_nan_and_inf_rules(backend, dtype):
    x = np.zeros((1, 6, 4, 10))
    x[0, 0] = 3.0                                  # all tied: the window's first position
    x[0, 1] = -np.inf                              # all -inf: the first position
    x[0, 2] = -np.inf
    x[0, 2, 1, 1::2] = np.nan                      # NaN in the last tap beats -inf
    x[0, 3, :, :] = np.inf
    x[0, 3, 0, 1::4] = np.nan                      # NaN beats +inf
    x[0, 3, 1, 0::4] = np.nan                      # ... and the first NaN wins
    x[0, 4] = H.distinct((4, 10), 3)
    x[0, 4, 1, 9] = np.nan                         # NaN at the plane's last position
    x[0, 5, 0, :] = 1.0
    x[0, 5, 1, :] = 1.0
    x[0, 5, 1, 3] = 2.0                            # bottom-left beats a tied top row
    for ceil_mode in (False, True):
        H.check_max_pool2d(x, "NCHW", dtype, f"rules ceil={ceil_mode}", kernel_size=2,
                           ceil_mode=ceil_mode)
        H.check_max_pool2d(x[:, :, :3, :9], "NCHW", dtype, f"rules odd ceil={ceil_mode}",
                           kernel_size=2, ceil_mode=ceil_mode)


def test_pool22_first_nan_payload_is_kept(dtype):
    """Two NaNs with different payloads in one window: the first one is returned, bit
    for bit (the values, not just the index)."""
    bits = np.uint32 if dtype == np.float32 else np.uint64
    first = np.array([0x7FC00001 if bits == np.uint32 else 0x7FF8000000000001], bits)
    second = np.array([0x7FC00002 if bits == np.uint32 else 0x7FF8000000000002], bits)
    x = np.zeros((1, 1, 2, 16), dtype)
    x[0, 0, 0, 1::2] = first.view(dtype)[0]
    x[0, 0, 1, 0::2] = second.view(dtype)[0]
    y, idx = aekernels.max_pool2d(x, 2, return_indices=True)
    assert (y.view(bits) == first[0]).all()
    np.testing.assert_array_equal(idx.ravel(), np.arange(1, 16, 2))


@pytest.mark.parametrize("geom", [
    dict(kernel_size=2, stride=1), dict(kernel_size=2, stride=2, padding=1),
    dict(kernel_size=2, stride=2, dilation=2), dict(kernel_size=(2, 3), stride=2),
    dict(kernel_size=2, stride=(2, 1)), dict(kernel_size=3, stride=2),
    dict(kernel_size=2, stride=3), dict(kernel_size=2, stride=2, padding=((0, 1), (0, 0)))],
    ids=lambda g: repr(sorted(g.items())))
def test_other_geometries_still_correct(backend, dtype, layout, geom):
    for shape in ((2, 3, 7, 9), (1, 2, 14, 14), (1, 1, 10, 5)):
        x = H.tricky(shape, zlib.crc32(repr((shape, sorted(geom.items()))).encode()))
        for ceil_mode in (False, True):
            H.check_max_pool2d(x, layout, dtype, f"{shape} {geom} ceil={ceil_mode}", **geom,
                               ceil_mode=ceil_mode)


@pytest.mark.parametrize("shape", [(2, 3, 28, 28), (2, 4, 14, 14), (1, 2, 9, 7),
                                   (3, 2, 10, 10)])
def test_pool22_indices_round_trip(backend, dtype, shape):
    """Fast-path indices drive max_unpool2d, its backward and max_pool2d_backward."""
    seed = zlib.crc32(repr(shape).encode())
    x = H.distinct(shape, seed)
    y, idx = aekernels.max_pool2d(x.astype(dtype), 2, return_indices=True)
    y_ref, i_ref = R.max_pool2d(x, 2)
    H.assert_bitwise(idx, i_ref, np.int64, what="indices")
    size = shape[2:]
    u = aekernels.max_unpool2d(y, idx, 2, output_size=size)
    H.assert_bitwise(u, R.max_unpool2d(y_ref, i_ref, 2, output_size=size), dtype,
                     what="max_unpool2d")
    gu = H.randn(shape, seed + 1)
    gx = aekernels.max_unpool2d_backward(gu.astype(dtype), idx)
    H.assert_bitwise(gx, R.max_unpool2d_backward(gu, i_ref), dtype,
                     what="max_unpool2d_backward")
    gy = H.randn(y_ref.shape, seed + 2)
    gp = aekernels.max_pool2d_backward(gy.astype(dtype), idx, shape)
    H.assert_bitwise(gp, R.max_pool2d_backward(gy, i_ref, shape), dtype,
                     what="max_pool2d_backward")


def test_pool22_same_result_for_any_thread_count(dtype):
    ensure_backend("native")
    x = H.randn((5, 7, 17, 18), 11, dtype)    # 35 planes: uneven plane ranges per task
    before = aekernels.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            aekernels.set_num_threads(n)
            with aekernels.use_backend("native"):
                results.append(aekernels.max_pool2d(x, 2, return_indices=True))
    finally:
        aekernels.set_num_threads(before)
    for y, idx in results[1:]:
        np.testing.assert_array_equal(y, results[0][0], strict=True)
        np.testing.assert_array_equal(idx, results[0][1], strict=True)


# ----------------------------------------------------------------------- index check


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("bad", [-1, 196, 2**63 - 1, -2**63])
def test_index_check_refuses_before_writing(backend, where, bad):
    """Large enough (> 32K indices) for the native check to split into chunks across
    threads; the culprit may sit in any chunk."""
    x = np.zeros((64, 16, 28, 28), np.float32)
    x[..., ::2, ::2] = 1.0
    y, idx = aekernels.max_pool2d(x, 2, return_indices=True)
    pos = {"first": 0, "middle": idx.size // 2 + 3, "last": idx.size - 1}[where]
    idx.reshape(-1)[pos] = bad if bad != 196 else 28 * 28
    culprit = idx.reshape(-1)[pos]
    calls = [
        (lambda out: aekernels.max_pool2d_backward(y, idx, x.shape, out=out), x.shape, 784),
        (lambda out: aekernels.max_unpool2d(y, idx, 2, out=out), x.shape, 784),
        (lambda out: aekernels.max_unpool2d_backward(x, idx, out=out), y.shape, 784),
    ]
    for call, shape, plane in calls:
        out = np.full(shape, 7.0, np.float32)
        with pytest.raises(ValueError,
                           match=rf"indices must lie in \[0, {plane}\).*found {culprit}$"):
            call(out)
        assert (out == 7.0).all(), "a refused call wrote to out"


@pytest.mark.parametrize("n", [1, 7, 32767, 32768, 100003])
def test_indices_below_native(n):
    ensure_backend("native")
    from aekernels import _pool
    before = aekernels.get_num_threads()
    try:
        for threads in (1, 2, 3):
            aekernels.set_num_threads(threads)
            a = np.arange(n, dtype=np.int64) % 50
            assert _pool.indices_below(a, 50)
            assert _pool.indices_below(a, 2**64 - 1)
            assert not _pool.indices_below(a, 0)
            assert _pool.indices_below(a, 49) == (n <= 49)
            for pos in sorted({0, n // 2, n - 1}):
                for bad in (50, -1, -2**63, 2**63 - 1):
                    b = a.copy()
                    b[pos] = bad
                    assert not _pool.indices_below(b, 50), (threads, pos, bad)
            assert _pool.indices_below(a.reshape(1, 1, 1, n), 50)
    finally:
        aekernels.set_num_threads(before)
    assert _pool.indices_below(np.zeros(0, np.int64), 0)
    with pytest.raises(TypeError):
        _pool.indices_below(np.zeros(3, np.int32), 5)
    with pytest.raises(ValueError):
        _pool.indices_below(np.zeros((3, 4), np.int64).T, 5)
    with pytest.raises(ValueError):
        _pool.indices_below(np.zeros(3, np.int64), -1)
