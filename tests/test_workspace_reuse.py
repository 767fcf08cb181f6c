"""Scratch memory is reused across calls (per-thread workspaces): a call must not read what
an earlier call left there.  Regression: NHWC convs whose channel count leaves the last
channel block of the channel-vector kernel part-filled (C % 16 == 8 on AVX-512 fp32) copied
that block without zeroing its lanes past C, so NaN left by an earlier call with NaN data
turned every output into NaN.  (The numba backend keeps no scratch between calls.)"""
import numpy as np
import pytest

import aekernels

SHAPES = [  # (C, K): part-filled and full channel blocks at each vector width
    (40, 40), (44, 44), (24, 16), (8, 32), (12, 20), (33, 17), (48, 48)]


def _calls(layout, x, w):
    """The conv entry points on (x, w) with padding 1 (3x3 weights)."""
    y = aekernels.conv2d(x, w, padding=1, layout=layout)
    return [y,
            aekernels.conv2d_backward_input(y, w, x.shape, padding=1, layout=layout),
            aekernels.conv2d_backward_filter(x, y, w.shape, padding=1, layout=layout)]


@pytest.mark.parametrize("algorithm", ["direct", "winograd"])
@pytest.mark.parametrize("c,k", SHAPES)
def test_nan_left_in_scratch_does_not_leak(native, dtype, layout, c, k, algorithm):
    rng = np.random.default_rng(c * 100 + k)
    aekernels.set_conv_algorithm(algorithm)
    aekernels.set_num_threads(1)       # one thread: the poisoning call's scratch is reused
    wshape = (k, c, 3, 3) if layout == "NCHW" else (3, 3, c, k)
    xshape = (2, c, 9, 31) if layout == "NCHW" else (2, 9, 31, c)
    x = rng.standard_normal(xshape).astype(dtype)
    w = rng.standard_normal(wshape).astype(dtype)
    clean = _calls(layout, x, w)
    # a larger call of every direction on NaN data fills the scratch buffers with NaN
    big = (1, 64, 30, 40) if layout == "NCHW" else (1, 30, 40, 64)
    wbig = (64, 64, 3, 3) if layout == "NCHW" else (3, 3, 64, 64)
    _calls(layout, np.full(big, np.nan, dtype), np.full(wbig, np.nan, dtype))
    for got, want in zip(_calls(layout, x, w), clean):
        assert np.isfinite(got).all()
        np.testing.assert_array_equal(got, want)
