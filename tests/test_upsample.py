"""upsample_nearest2d and its backward vs the reference."""
import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R
from cases import UPSAMPLE_SCALES


@pytest.mark.parametrize("scale", UPSAMPLE_SCALES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 7), (1, 5, 3, 1)],
                         ids=["2x3x4x5", "1x1x1x7", "1x5x3x1"])
def test_upsample_nearest2d(backend, dtype, layout, scale, shape):
    x = H.randn(shape, 1)
    ref = R.upsample_nearest2d(x, scale)
    y = aekernels.upsample_nearest2d(H.data(x, layout, dtype), scale, layout=layout)
    H.assert_bitwise(y, R.from_nchw(ref, layout), dtype, what="upsample_nearest2d")


@pytest.mark.parametrize("scale", UPSAMPLE_SCALES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 1, 3)], ids=["2x3x4x5", "1x2x1x3"])
def test_upsample_nearest2d_backward(backend, dtype, layout, scale, shape):
    f = R.pair(scale)
    gy = H.randn((shape[0], shape[1], shape[2] * f[0], shape[3] * f[1]), 2)
    ref = R.upsample_nearest2d_backward(gy, scale)
    bound = R.upsample_nearest2d_backward(np.abs(gy), scale)
    gx = aekernels.upsample_nearest2d_backward(H.data(gy, layout, dtype), scale, layout=layout)
    H.assert_close(gx, R.from_nchw(ref, layout), dtype, bound=R.from_nchw(bound, layout),
                   K=f[0] * f[1], what="upsample_nearest2d_backward")


def test_upsample_nearest2d_3d_input_returns_3d(backend, dtype, layout):
    x = H.randn((1, 2, 3, 4), 3)
    ref = R.upsample_nearest2d(x, (2, 3))
    y = aekernels.upsample_nearest2d(H.data(x, layout, dtype)[0], (2, 3), layout=layout)
    assert y.ndim == 3
    H.assert_bitwise(y, R.from_nchw(ref, layout)[0], dtype)
    g = aekernels.upsample_nearest2d_backward(y, (2, 3), layout=layout)
    assert g.ndim == 3
    H.assert_close(g, R.from_nchw(R.upsample_nearest2d_backward(ref, (2, 3)), layout)[0], dtype)


def test_upsample_nearest2d_empty_batch(backend, dtype, layout):
    x = np.zeros(H.shape((0, 2, 3, 4), layout), dtype)
    y = aekernels.upsample_nearest2d(x, 2, layout=layout)
    assert y.shape == H.shape((0, 2, 6, 8), layout) and y.dtype == dtype
    g = aekernels.upsample_nearest2d_backward(y, 2, layout=layout)
    assert g.shape == x.shape and g.dtype == dtype
