"""Inputs in unusual memory layouts (TESTING.md bad-input list, the *valid* part):
non-contiguous, negative-stride, Fortran-order, unaligned and read-only arrays, buffer
protocol / __array_interface__ objects: each gives the result of a contiguous copy and
inputs are never modified.  (These run in-process: _api copies such inputs before any
kernel sees them; the refusals are in test_bad_input.py.)"""
import numpy as np

import aekernels as ak
import reference as R


def conv_setup(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    gy = rng.standard_normal((2, 4, 6, 6)).astype(dtype)
    return x, w, b, gy


def pool_setup(dtype):
    rng = np.random.default_rng(1)
    x = rng.permutation(2 * 3 * 8 * 8).reshape(2, 3, 8, 8).astype(dtype)
    y, idx = R.max_pool2d(x, 2)
    gy = rng.standard_normal(y.shape).astype(dtype)
    return x, y.astype(dtype), idx, gy

def _layout_variants(a):
    """Views of the same values as ``a``: non-contiguous, negative-stride, Fortran-order,
    unaligned and read-only (each must give the result of the contiguous copy)."""
    out = {}
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    out["non_contiguous"] = big[..., ::2]
    rev = np.ascontiguousarray(a[..., ::-1])
    out["negative_stride"] = rev[..., ::-1]
    out["fortran_order"] = np.asfortranarray(a)
    raw = np.zeros(a.nbytes + 1, np.uint8)
    una = raw[1:].view(a.dtype).reshape(a.shape)
    una[...] = a
    out["unaligned"] = una
    ro = a.copy()
    ro.flags.writeable = False
    out["read_only"] = ro
    for name, v in out.items():
        np.testing.assert_array_equal(v, a)
    assert not out["unaligned"].flags.aligned or a.dtype.itemsize == 1
    return out


def _valid_calls():
    x, w, b, gy = conv_setup(np.float64)
    px, py, pidx, pgy = pool_setup(np.float64)
    return [
        ("conv2d", ak.conv2d, [x, w, b], dict(padding=1, stride=(1, 2))),
        ("conv2d_backward_input", ak.conv2d_backward_input, [gy, w, x.shape], {}),
        ("conv2d_backward_filter", ak.conv2d_backward_filter, [x, gy, w.shape], {}),
        ("conv2d_backward_bias", ak.conv2d_backward_bias, [gy], {}),
        ("conv_transpose2d", ak.conv_transpose2d, [gy, w, b[:3]], dict(stride=2)),
        ("max_pool2d", ak.max_pool2d, [px, 3], dict(stride=2, padding=1, return_indices=True)),
        ("max_pool2d_backward", ak.max_pool2d_backward, [pgy, pidx, px.shape], {}),
        ("avg_pool2d", ak.avg_pool2d, [px, 3], dict(stride=2, padding=1)),
        ("avg_pool2d_backward", ak.avg_pool2d_backward, [pgy, px.shape, 2], {}),
        ("max_unpool2d", ak.max_unpool2d, [py, pidx, 2], {}),
        ("max_unpool2d_backward", ak.max_unpool2d_backward, [px, pidx], {}),
        ("upsample_nearest2d", ak.upsample_nearest2d, [px, (2, 3)], {}),
        ("upsample_nearest2d_backward", ak.upsample_nearest2d_backward, [px, 2], {}),
    ]


def _same(a, b, what):
    if isinstance(a, tuple):
        for u, v in zip(a, b):
            _same(u, v, what)
        return
    np.testing.assert_array_equal(a, b, err_msg=what, strict=True)


def test_unusual_memory_layouts_give_the_contiguous_result(backend):
    """non-contiguous, negative-stride, Fortran-order, unaligned, read-only inputs."""
    for name, fn, args, kw in _valid_calls():
        expected = fn(*args, **kw)
        for i, a in enumerate(args):
            if not isinstance(a, np.ndarray) or a.ndim < 1:
                continue
            for variant, v in _layout_variants(a).items():
                before = v.copy()
                got = fn(*args[:i], v, *args[i + 1:], **kw)
                _same(got, expected, f"{name}: argument {i} {variant}")
                np.testing.assert_array_equal(v, before, err_msg=f"{name} modified its input")


def test_inputs_are_not_modified(backend):
    for name, fn, args, kw in _valid_calls():
        copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        fn(*args, **kw)
        for a, c in zip(args, copies):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, c, err_msg=f"{name} modified an input")


def test_buffer_protocol_and_array_interface_inputs(backend):
    x, w, b, gy = conv_setup(np.float64)
    expected = ak.conv2d(x, w, b)

    class Iface:
        def __init__(self, a):
            self.__array_interface__ = a.__array_interface__
            self._keep = a

    np.testing.assert_array_equal(ak.conv2d(memoryview(x), memoryview(w), b), expected)
    np.testing.assert_array_equal(ak.conv2d(Iface(x), Iface(w), Iface(b)), expected)
    assert isinstance(ak.conv2d(memoryview(x), w), np.ndarray)




def test_conv2d_huge_but_legal_stride_gives_one_output(backend):
    x, w, b, gy = conv_setup(np.float64)
    y = ak.conv2d(x, w, b, stride=2**31 - 1)
    np.testing.assert_allclose(y, R.conv2d(x, w, b, stride=2**31 - 1), rtol=1e-10, atol=1e-10)
