"""Properties of the native direct kernels for convs with few taps (C/groups*kh*kw <= 64,
csrc/aekernels/conv_direct.hpp) that the reference grids do not pin down: the
backward-filter reduction is cut into fixed chunks, so its result does not depend on the
thread count; the forward aligns its stores to the output buffer, which must not change
a single bit of the result."""
import functools

import numpy as np
import pytest

import aekernels
import helpers as H

# (N, C, H, W, K, k, stride, padding, groups): first-layer and depthwise shapes
SHAPES = [
    pytest.param((9, 1, 28, 28, 32, 3, 1, 1, 1), id="ae_enc1_like"),
    pytest.param((5, 3, 30, 29, 16, 3, 2, 1, 1), id="stem_s2_like"),
    pytest.param((4, 6, 13, 17, 12, 3, 1, 1, 6), id="depthwise_mult2"),
]


@functools.lru_cache(maxsize=None)
def _nchw_problem(shape):
    n, c, h, w, k, ks, s, p, g = shape
    x = H.randn((n, c, h, w), 11)
    wt = H.randn((k, c // g, ks, ks), 12)
    oh, ow = (h + 2 * p - ks) // s + 1, (w + 2 * p - ks) // s + 1
    return x, wt, H.randn((n, k, oh, ow), 13)


def _problem(shape, layout, dtype):
    _, _, _, _, _, _, s, p, g = shape
    x, wt, gy = _nchw_problem(shape)
    args = dict(stride=s, padding=p, groups=g, layout=layout)
    return (H.data(x, layout, dtype), H.weight(wt, layout, dtype), H.data(gy, layout, dtype),
            args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_filter_same_bits_for_any_thread_count(native, shape, layout, dtype):
    x, w, gy, args = _problem(shape, layout, dtype)
    results = []
    for threads in (1, 2, 3):
        aekernels.set_num_threads(threads)
        results.append(aekernels.conv2d_backward_filter(x, gy, w.shape, **args))
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_same_bits_at_any_output_alignment(native, shape, layout, dtype):
    x, w, _, args = _problem(shape, layout, dtype)
    b = np.linspace(-1, 1, w.shape[0 if layout == "NCHW" else 3]).astype(dtype)
    ref = aekernels.conv2d(x, w, b, **args)
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(ref.nbytes + 128, np.uint8)
    for offset in range(0, 64, itemsize):
        start = (-raw.ctypes.data) % 64 + offset
        out = raw[start:start + ref.nbytes].view(dtype).reshape(ref.shape)
        out[...] = np.nan
        aekernels.conv2d(x, w, b, **args, out=out)
        np.testing.assert_array_equal(out, ref)
