"""The parameter space of TESTING.md, as small named cases shared by several test files.

Shapes and weights are given in NCHW/OIHW terms; tests convert them to each layout.
"""
from __future__ import annotations

import pytest


def _conv(id, N=2, C=3, H=7, W=6, K=4, k=3, stride=1, padding=0, dilation=1, groups=1,
          bias=True):
    kh, kw = (k, k) if isinstance(k, int) else k
    return pytest.param(dict(N=N, C=C, H=H, W=W, K=K, kh=kh, kw=kw, stride=stride,
                             padding=padding, dilation=dilation, groups=groups,
                             bias=bias, id=id), id=id)


CONV_CASES = [
    _conv("k1x1", H=5, W=6, k=1),
    _conv("k3x3_p1", k=3, padding=1),
    _conv("k5x5_p2", N=1, C=2, H=9, W=8, K=3, k=5, padding=2),
    _conv("k4x4_even_s2", C=2, H=8, W=7, K=3, k=4, stride=2),
    _conv("k4x4_even_same", C=2, H=8, W=7, K=3, k=4, padding="same"),
    _conv("k4x4_even_same_lower", C=2, H=8, W=7, K=3, k=4, padding="same_lower"),
    _conv("kernel_eq_input", H=5, W=4, k=(5, 4)),
    _conv("kernel_eq_input_p1", H=3, W=3, k=3, padding=1, stride=2),
    _conv("stride_gt_kernel", H=9, W=10, k=2, stride=3),
    _conv("stride_gt_kernel_rect", H=9, W=10, k=(1, 2), stride=(4, 3), padding=(1, 0)),
    _conv("dilation2", H=9, W=8, k=3, dilation=2, padding=2),
    _conv("dilation_rect_stride_rect", H=9, W=11, k=3, dilation=(2, 1), stride=(1, 2)),
    _conv("asym_padding", k=3, padding=((1, 2), (0, 3))),
    _conv("asym_padding_stride2", H=8, W=9, k=(2, 3), padding=((0, 1), (2, 0)), stride=2),
    _conv("pair_padding", k=(3, 5), padding=(2, 1)),
    _conv("same_stride2_odd", H=7, W=9, k=3, stride=2, padding="same"),
    _conv("same_lower_stride2", H=8, W=7, k=4, stride=2, padding="SAME_LOWER"),
    _conv("same_dilation2", H=7, W=6, k=3, dilation=2, padding="same"),
    _conv("same_stride3_big", H=10, W=5, k=5, stride=3, padding="same"),
    _conv("valid", H=6, W=7, k=3, padding="valid"),
    _conv("valid_upper", H=6, W=7, k=2, stride=2, padding="VALID"),
    _conv("groups2", C=4, K=6, groups=2, padding=1),
    _conv("groups3_k1", C=6, K=3, k=1, groups=3),
    _conv("depthwise", C=4, K=4, groups=4, padding=1),
    _conv("depthwise_multiplier2", C=3, K=6, groups=3, k=5, padding=2, stride=2),
    _conv("batch1_odd", N=1, C=1, H=3, W=11, K=1, k=3),
    _conv("rect_kernel_1x3", H=5, W=9, k=(1, 3), padding=(0, 1)),
    _conv("rect_kernel_3x1", H=9, W=5, k=(3, 1), stride=(2, 1)),
    _conv("no_bias", bias=False, padding=1),
    _conv("awkward_blocking", N=2, C=5, H=13, W=11, K=17, k=3, padding=1),
    _conv("many_channels_1x1", N=1, C=19, H=4, W=5, K=9, k=1),
    _conv("single_pixel_out", H=4, W=4, k=4, K=5, C=2),
    _conv("h1_w1_input", H=1, W=1, k=1, K=3, C=2, padding=0),
    _conv("h1_input_padded", H=1, W=6, k=3, padding=1),
    _conv("h1_w1_padded_k1", H=1, W=1, k=1, padding=1),
    _conv("bottom_padding_only_windows", H=2, W=3, k=1, padding=((1, 2), (0, 3))),
    # bigger shapes: GEMM blocking, slab/phase-plane paths, vector tails
    _conv("larger_stride1", N=2, C=16, H=20, W=19, K=32, k=3, padding=1),
    # channel-vector path (stride 1, channels that fill vectors): partial channel
    # and output blocks, rows wider / narrower than the register tile, groups,
    # dilation, asymmetric padding, a single image split into row ranges
    _conv("cl_partial_blocks", N=2, C=40, H=9, W=31, K=40, k=3, padding=1),
    _conv("cl_groups2_dilated", N=1, C=64, H=11, W=10, K=64, k=3, padding=2, dilation=2,
          groups=2),
    _conv("cl_asym_pad_rect", N=3, C=32, H=7, W=16, K=16, k=(2, 3),
          padding=((1, 0), (2, 1)), bias=False),
    _conv("cl_one_image_tall", N=1, C=16, H=45, W=5, K=80, k=3, padding=1),
    _conv("cl_odd_outputs", N=2, C=16, H=6, W=9, K=30, k=3, padding=1),
    # the conv-ae's 16 <-> 32 channel layer (planar slab for channel-major sources;
    # backward-input reads two channel blocks), and rows wider than two vectors
    _conv("cl_ae_16_32", N=3, C=16, H=14, W=14, K=32, k=3, padding=1),
    _conv("cl_wide_rows", N=1, C=32, H=5, W=37, K=16, k=3, padding=1, bias=False),
    _conv("larger_stride2_k5", N=1, C=8, H=23, W=21, K=24, k=5, stride=2, padding=2),
    _conv("stem_k7_s2_p3", N=1, C=3, H=17, W=18, K=8, k=7, stride=2, padding=3),
    _conv("one_input_channel", N=2, C=1, H=16, W=15, K=8, k=3, padding=1),
    _conv("depthwise_larger_s2", N=2, C=16, H=14, W=13, K=16, k=3, stride=2, padding=1,
          groups=16),
    _conv("k1_s2_downsample", N=2, C=8, H=9, W=10, K=16, k=1, stride=2),
    _conv("stride3_dilation2_larger", N=1, C=6, H=19, W=17, K=10, k=3, stride=3, dilation=2,
          padding="same"),
    # few taps (C/groups*kh*kw <= 64: the direct kernels of conv_direct.hpp): rows wider
    # than a register tile, channel counts that leave remainders in every tile shape
    _conv("few_taps_wide_rows", N=2, C=1, H=6, W=75, K=35, k=3, padding=1),
    _conv("few_taps_s2_wide", N=1, C=3, H=9, W=70, K=19, k=3, stride=2, padding=1),
    _conv("few_taps_dilated_asym", N=2, C=2, H=10, W=40, K=9, k=(3, 2), dilation=(2, 3),
          padding=((1, 0), (2, 1))),
    _conv("few_taps_limit_64", N=1, C=4, H=9, W=21, K=33, k=4, stride=(1, 3), padding=2),
    _conv("few_taps_valid_k4", N=3, C=1, H=20, W=37, K=32, k=4),
]


def _ct(id, N=2, Cin=4, Cout=3, H=4, W=5, k=3, stride=1, padding=0, output_padding=0,
        dilation=1, groups=1, output_size=None, bias=True):
    kh, kw = (k, k) if isinstance(k, int) else k
    return pytest.param(dict(N=N, Cin=Cin, Cout=Cout, H=H, W=W, kh=kh, kw=kw,
                             stride=stride, padding=padding, output_padding=output_padding,
                             dilation=dilation, groups=groups, output_size=output_size,
                             bias=bias, id=id), id=id)


CONV_TRANSPOSE_CASES = [
    _ct("k1x1", k=1),
    _ct("k3x3", k=3),
    _ct("k3x3_s2_p1_op1", k=3, stride=2, padding=1, output_padding=1),
    _ct("k4x4_s2_p1", k=4, stride=2, padding=1),
    _ct("k5x5_p2", k=5, padding=2, H=5, W=5),
    _ct("stride_gt_kernel", k=2, stride=3, output_padding=(2, 1)),
    _ct("dilation2", k=3, dilation=2, padding=1),
    _ct("dilation3_op2_gt_stride", k=2, dilation=3, stride=1, output_padding=2),
    _ct("asym_padding", k=3, stride=2, padding=((1, 0), (2, 1))),
    _ct("rect", k=(2, 3), stride=(2, 1), padding=(0, 1), output_padding=(1, 0)),
    _ct("groups2", Cin=4, Cout=6, groups=2, k=3, stride=2),
    _ct("depthwise", Cin=4, Cout=4, groups=4, k=3, padding=1),
    _ct("output_size_hw", k=3, stride=2, padding=1, output_size=(8, 10)),
    _ct("output_size_full", k=3, stride=2, padding=1, output_size=(2, 3, 7, 9)),
    _ct("same_s1", k=3, padding="same"),
    _ct("same_s2_even_k", k=4, stride=2, padding="same"),
    _ct("same_lower_s2", k=3, stride=2, padding="same_lower"),
    _ct("same_output_size", k=3, stride=2, padding="same", output_size=(7, 9)),
    _ct("valid_s2", k=3, stride=2, padding="valid"),
    _ct("batch1_odd", N=1, Cin=1, Cout=1, H=3, W=7, k=3, bias=False),
    _ct("same_kernel_shorter_than_stride", k=1, stride=2, padding="same"),
    _ct("same_k2_s3", k=2, stride=3, padding="same"),
    _ct("taps_only_in_padding", N=1, Cin=1, Cout=1, H=1, W=2, k=(2, 1), stride=(1, 2),
        padding=1, dilation=(2, 1)),
    _ct("larger_s2_k4", N=2, Cin=16, Cout=8, H=7, W=6, k=4, stride=2, padding=1),
    _ct("cl_s1_channels", N=2, Cin=32, Cout=48, H=9, W=15, k=3, stride=1, padding=1),
    _ct("cl_s2_phases", N=1, Cin=64, Cout=32, H=6, W=7, k=3, stride=2, padding=1),
    # stride 1 on the channel-vector path: the bias rides in the kernel's stores
    # (a partial output vector for 40 channels)
    _ct("cl_s1_ae_32_16", N=3, Cin=32, Cout=16, H=14, W=14, k=3, stride=1, padding=1),
    _ct("cl_s1_partial_out", N=1, Cin=40, Cout=40, H=5, W=18, k=3, stride=1, padding=1),
    _ct("cl_s1_no_bias", N=2, Cin=16, Cout=32, H=6, W=9, k=3, stride=1, padding=1,
        bias=False),
]


def _pool(id, N=2, C=3, H=8, W=9, k=2, stride=None, padding=0, dilation=1,
          ceil_mode=False):
    return pytest.param(dict(N=N, C=C, H=H, W=W, kernel_size=k, stride=stride,
                             padding=padding, dilation=dilation, ceil_mode=ceil_mode, id=id),
                        id=id)


POOL_CASES = [
    _pool("k1x1", k=1),
    _pool("k2_default_stride", k=2),
    _pool("k3_s1", k=3, stride=1),
    _pool("k3_s2_p1", k=3, stride=2, padding=1),
    _pool("k3_s2_p1_ceil", k=3, stride=2, padding=1, ceil_mode=True),
    _pool("k2_ceil_odd", H=7, W=9, k=2, ceil_mode=True),
    _pool("k2_s2_p1_ceil_last_window_dropped", H=5, W=6, k=2, stride=2, padding=1,
          ceil_mode=True),
    _pool("k4_even_s2_p2", k=4, stride=2, padding=2),
    _pool("k5_p2", H=9, W=7, k=5, stride=1, padding=2),
    _pool("kernel_eq_input", H=5, W=4, k=(5, 4)),
    _pool("stride_gt_kernel", H=10, W=11, k=2, stride=3),
    _pool("stride_gt_kernel_ceil", H=10, W=11, k=2, stride=3, ceil_mode=True),
    _pool("dilation2", H=9, W=9, k=3, stride=1, dilation=2),
    _pool("dilation2_p2_ceil", H=9, W=8, k=3, stride=2, padding=2, dilation=2, ceil_mode=True),
    _pool("rect", H=9, W=8, k=(2, 3), stride=(1, 2), padding=(1, 1)),
    _pool("asym_padding", k=3, stride=2, padding=((0, 1), (1, 0))),
    _pool("same", H=7, W=9, k=3, stride=2, padding="same"),
    _pool("same_even_k", H=8, W=7, k=4, stride=1, padding="same"),
    _pool("same_lower", H=8, W=7, k=2, stride=1, padding="same_lower"),
    _pool("valid", H=7, W=7, k=3, stride=2, padding="valid"),
    _pool("batch1_odd", N=1, C=1, H=5, W=11, k=3, stride=2),
    _pool("h1", H=1, W=6, k=(1, 2)),
    _pool("ceil_window_wider_than_input", H=3, W=4, k=4, stride=2, ceil_mode=True),
    _pool("ceil_window_wider_padded", H=4, W=5, k=6, stride=3, padding=1, ceil_mode=True),
]

AVG_OPTIONS = [
    pytest.param(dict(count_include_pad=True, divisor_override=None), id="incl_pad"),
    pytest.param(dict(count_include_pad=False, divisor_override=None), id="excl_pad"),
    pytest.param(dict(count_include_pad=True, divisor_override=5), id="divisor5"),
]


def _unpool(id, N=2, C=3, H=8, W=9, k=2, stride=None, padding=0, output_size=None):
    return pytest.param(dict(N=N, C=C, H=H, W=W, kernel_size=k, stride=stride,
                             padding=padding, output_size=output_size, id=id), id=id)


# (H, W) is the size of the image that was pooled; unpool takes the pooled result.
UNPOOL_CASES = [
    _unpool("k2", W=8, k=2),
    _unpool("k2_odd_with_output_size", H=7, W=9, k=2, output_size=(7, 9)),
    _unpool("k3_s2_p1", k=3, stride=2, padding=1, output_size=(8, 9)),
    _unpool("k3_s1_overlap", H=6, W=7, k=3, stride=1),
    _unpool("stride_gt_kernel", H=10, W=11, k=2, stride=3, output_size=(10, 11)),
    _unpool("rect", H=8, W=9, k=(2, 3), stride=(2, 3)),
    _unpool("full_output_size", H=9, W=9, k=2, output_size="full"),
    _unpool("batch1", N=1, C=1, H=4, W=6, k=2),
]

UPSAMPLE_SCALES = [
    pytest.param(1, id="s1"),
    pytest.param(2, id="s2"),
    pytest.param((2, 3), id="s2x3"),
    pytest.param((3, 1), id="s3x1"),
    pytest.param((1, 4), id="s1x4"),
]


# The numba backend runs a representative subset of the grids above (CI time: its cost is
# JIT compilation, and the kernels are shared across cases); the native backend runs them
# all.  AEKERNELS_FULL_NUMBA_GRID=1 runs every case on numba too (see conftest.py).
NUMBA_SUBSET = {
    # conv
    "k1x1", "k3x3_p1", "k4x4_even_s2", "k4x4_even_same_lower", "kernel_eq_input",
    "stride_gt_kernel_rect", "dilation_rect_stride_rect", "asym_padding_stride2",
    "same_stride2_odd", "groups2", "depthwise_multiplier2", "batch1_odd", "awkward_blocking",
    "h1_w1_padded_k1", "bottom_padding_only_windows", "one_input_channel",
    "stride3_dilation2_larger",
    # conv_transpose
    "k3x3_s2_p1_op1", "dilation3_op2_gt_stride", "asym_padding", "rect", "output_size_full",
    "same_s2_even_k", "same_kernel_shorter_than_stride", "taps_only_in_padding",
    # pooling
    "k2_default_stride", "k3_s2_p1_ceil", "k2_s2_p1_ceil_last_window_dropped",
    "k4_even_s2_p2", "stride_gt_kernel_ceil", "dilation2_p2_ceil", "same", "same_lower",
    "ceil_window_wider_padded",
    # unpool
    "k3_s2_p1", "k3_s1_overlap", "full_output_size",
}
