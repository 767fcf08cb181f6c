"""The bad-input list of TESTING.md, on both backends.

Every test body runs in a child interpreter (see isolation.py), so a crash in a kernel
is reported as a failure of the test that caused it instead of killing pytest.
Each bad argument must raise ValueError (values/shapes) or TypeError (types) whose
message names the parameter, and nothing may be written into ``out``.  Regression tests
are named after the CVE classes listed in TESTING.md.
"""
import re

import numpy as np
import pytest

import aekernels as ak
import reference as R
from isolation import isolated

F32 = np.float32


def expect(exc, patterns, fn, *args, **kwargs):
    """Call fn(*args, **kwargs); require ``exc``, a message matching every regex in
    ``patterns`` (case-insensitive), and ``out`` (if given) left untouched."""
    if isinstance(patterns, str):
        patterns = [patterns]
    out = kwargs.get("out")
    before = out.copy() if isinstance(out, np.ndarray) else None
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    if not isinstance(info.value, MemoryError):
        for pat in patterns:
            assert re.search(pat, msg, re.IGNORECASE), (
                f"{getattr(fn, '__name__', fn)}: {type(info.value).__name__} message {msg!r} "
                f"does not match {pat!r} (args {_short(args)}, kwargs {_short(kwargs)})")
    if before is not None:
        assert np.array_equal(out, before, equal_nan=True), \
            f"{fn.__name__}: out was written although the call raised {msg!r}"
    return info.value


def _short(obj):
    if isinstance(obj, dict):
        return {k: _short(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_short(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return f"<array {obj.shape} {obj.dtype}>"
    return obj


def sentinel(shape, dtype=F32):
    out = np.empty(shape, dtype)
    out[...] = 12345
    return out


def conv_setup(dtype=F32):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    gy = rng.standard_normal((2, 4, 6, 6)).astype(dtype)
    return x, w, b, gy


def pool_setup(dtype=F32):
    rng = np.random.default_rng(1)
    x = rng.permutation(2 * 3 * 8 * 8).reshape(2, 3, 8, 8).astype(dtype)
    y, idx = R.max_pool2d(x, 2)
    gy = rng.standard_normal(y.shape).astype(dtype)
    return x, y.astype(dtype), idx, gy


def _conv_calls(**params):
    """The four conv entry points with valid data and the given (bad) geometry."""
    x, w, b, gy = conv_setup()
    return [
        (ak.conv2d, (x, w, b), params),
        (ak.conv2d_backward_input, (gy, w, x.shape), params),
        (ak.conv2d_backward_filter, (x, gy, w.shape), params),
        (ak.conv_transpose2d, (gy, w), params),
    ]


# ============================================================================ conv


@isolated
def test_conv_rejects_zero_stride():
    for bad in (0, (1, 0), (0, 1)):
        for fn, args, kw in _conv_calls(stride=bad):
            expect(ValueError, "stride", fn, *args, **kw)


@isolated
def test_conv_rejects_negative_stride():
    for bad in (-1, (1, -2), -2**63):
        for fn, args, kw in _conv_calls(stride=bad):
            expect(ValueError, "stride", fn, *args, **kw)


@isolated
def test_conv_rejects_zero_dilation():
    for bad in (0, (0, 1)):
        for fn, args, kw in _conv_calls(dilation=bad):
            expect(ValueError, "dilation", fn, *args, **kw)


@isolated
def test_conv_rejects_negative_dilation():
    """PyTorch once let negative dilation slip past a check."""
    for bad in (-1, (1, -1), (-2, -2), -2**31, -2**63):
        for fn, args, kw in _conv_calls(dilation=bad):
            expect(ValueError, "dilation", fn, *args, **kw)


@isolated
def test_conv_rejects_negative_padding():
    for bad in (-1, (0, -1), ((0, 0), (-1, 0)), ((0, -2**63), (0, 0))):
        for fn, args, kw in _conv_calls(padding=bad):
            expect(ValueError, "padding", fn, *args, **kw)


@isolated
def test_conv_rejects_overflowing_padding():
    """Huge padding must not overflow output-size arithmetic (PyTorch int overflow)."""
    for bad in (2**31, 2**31 - 1, 2**32 + 3, 2**55, 2**63 - 1, 2**63, 2**64,
                ((0, 2**63), (0, 0)), ((2**62, 2**62), (0, 0)), (2**30, 2**30)):
        for fn, args, kw in _conv_calls(padding=bad):
            expect((ValueError, MemoryError), r"padding|too large|2\*\*|grad_out|shape",
                   fn, *args, **kw)


@isolated
def test_conv_rejects_huge_stride_dilation_kernel():
    x, w, b, gy = conv_setup()
    for bad in (2**31, 2**55, 2**63):
        expect(ValueError, "stride", ak.conv2d, x, w, stride=bad)
        expect(ValueError, "dilation", ak.conv2d, x, w, dilation=bad)
        expect((ValueError, MemoryError), "stride|too large|2\\*\\*|output",
               ak.conv_transpose2d, gy, w, stride=(bad, 1))
    # dilation so large the kernel no longer fits -> output size <= 0
    expect(ValueError, "dilation|kernel|output|size|input", ak.conv2d, x, w, dilation=2**30)
    # transposed conv with a stride that makes the result too large
    expect((ValueError, MemoryError), "too large|2\\*\\*|stride|output",
           ak.conv_transpose2d, gy, w, stride=2**30)


@isolated
def test_conv_rejects_nonpositive_output_size():
    x, w, _, _ = conv_setup()
    small = x[:, :, :2, :]
    expect(ValueError, r"kernel|weight|output|input|size", ak.conv2d, np.ascontiguousarray(small), w)
    expect(ValueError, r"kernel|weight|output|input|size|dilation", ak.conv2d, x, w, dilation=4)
    expect(ValueError, r"kernel|weight|output|input|size", ak.conv2d_backward_filter,
           np.ascontiguousarray(small), np.zeros((2, 4, 0, 6), F32), w.shape)


@isolated
def test_conv_rejects_zero_extents():
    """N == 0 is an empty batch; any other zero extent is a ValueError."""
    x, w, b, gy = conv_setup()
    for xs, ws in [((2, 0, 8, 8), (4, 0, 3, 3)), ((2, 3, 0, 8), (4, 3, 3, 3)),
                   ((2, 3, 8, 0), (4, 3, 3, 3)), ((2, 3, 8, 8), (0, 3, 3, 3)),
                   ((2, 3, 8, 8), (4, 3, 0, 3)), ((2, 3, 8, 8), (4, 3, 3, 0))]:
        expect(ValueError, r"\bx\b|weight|channel|kernel|input|height|width|empty|zero",
               ak.conv2d, np.zeros(xs, F32), np.zeros(ws, F32))
    expect(ValueError, r"grad_out|channel|empty|zero", ak.conv2d_backward_bias,
           np.zeros((2, 0, 3, 3), F32))


@isolated
def test_conv_backward_input_rejects_empty_filter():
    """TF CVE-2021-29525: Conv2DBackpropInput divided by zero on an empty filter."""
    x, w, b, gy = conv_setup()
    for ws in [(4, 3, 0, 3), (4, 3, 3, 0), (0, 3, 3, 3), (4, 0, 3, 3), (4, 3, 0, 0)]:
        empty = np.zeros(ws, F32)
        expect(ValueError, r"weight|kernel|filter|channel|empty|zero",
               ak.conv2d_backward_input, gy, empty, x.shape)
        expect(ValueError, r"weight|kernel|filter|channel|empty|zero",
               ak.conv2d_backward_input, np.ascontiguousarray(gy.transpose(0, 2, 3, 1)),
               np.ascontiguousarray(empty.transpose(2, 3, 1, 0)), (2, 8, 8, 3), layout="NHWC")
        expect(ValueError, r"weight|kernel|filter|channel|empty|zero",
               ak.conv_transpose2d, gy, empty)


@isolated
def test_conv_backward_filter_rejects_inconsistent_filter_sizes():
    """TF CVE-2021-29540: Conv2DBackpropFilter heap overflow from unchecked filter sizes."""
    x, w, b, gy = conv_setup()
    for bad in [(4, 3, 5, 5), (4, 3, 1, 1), (5, 3, 3, 3), (3, 3, 3, 3), (4, 2, 3, 3),
                (4, 4, 3, 3), (4, 3, 3), (4, 3, 3, 3, 1), (4, 3, 2**31, 3), (4, 3, -1, 3),
                (4, 3, 0, 3), (2**40, 3, 3, 3), (4, 3, 2**63, 3), (4, 3, 3, -2**63)]:
        expect((ValueError, MemoryError), r"weight_shape|grad_out|kernel|filter|shape",
               ak.conv2d_backward_filter, x, gy, bad)
    # NHWC (HWIO weight_shape)
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    gyh = np.ascontiguousarray(gy.transpose(0, 2, 3, 1))
    for bad in [(5, 5, 3, 4), (3, 3, 3, 5), (3, 3, 2, 4), (3, 3, 3, 2**31)]:
        expect((ValueError, MemoryError), r"weight_shape|grad_out|kernel|filter|shape",
               ak.conv2d_backward_filter, xh, gyh, bad, layout="NHWC")
    # consistent weight_shape but grad_out of the wrong spatial size: out untouched
    out = sentinel(w.shape)
    expect(ValueError, r"grad_out|shape", ak.conv2d_backward_filter, x,
           np.zeros((2, 4, 7, 6), F32), w.shape, out=out)


@isolated
def test_conv_backward_input_rejects_inconsistent_input_shape():
    x, w, b, gy = conv_setup()
    for bad in [(2, 3, 9, 9), (2, 3, 5, 8), (3, 3, 8, 8), (1, 3, 8, 8), (2, 4, 8, 8),
                (2, 3, 8), (2, 3, 8, 8, 1), (2, 3, -8, 8), (2, 3, 2**31, 8),
                (2, 3, 2**62, 2**62), (2, 3, 2**64, 8)]:
        expect((ValueError, MemoryError), r"input_shape|grad_out|shape",
               ak.conv2d_backward_input, gy, w, bad)
    out = sentinel(x.shape)
    expect(ValueError, r"grad_out|shape", ak.conv2d_backward_input,
           np.zeros((2, 4, 5, 6), F32), w, x.shape, out=out)
    expect(ValueError, r"grad_out|weight|channel", ak.conv2d_backward_input,
           np.zeros((2, 5, 6, 6), F32), w, x.shape, out=out)


@isolated
def test_conv_rejects_wrong_ndim():
    x, w, b, gy = conv_setup()
    for bad_x in (x[0, 0], x[None], np.float32(1.0), np.zeros(5, F32)):
        expect(ValueError, r"\bx\b", ak.conv2d, bad_x, w)
        expect(ValueError, r"\bx\b", ak.conv2d_backward_filter, bad_x, gy, w.shape)
    for bad_w in (w[0], w[None]):
        expect(ValueError, "weight", ak.conv2d, x, bad_w)
        expect(ValueError, "weight", ak.conv2d_backward_input, gy, bad_w, x.shape)
        expect(ValueError, "weight", ak.conv_transpose2d, gy, bad_w)
    for bad_g in (gy[0, 0], gy[None]):
        expect(ValueError, "grad_out", ak.conv2d_backward_input, bad_g, w, x.shape)
        expect(ValueError, "grad_out", ak.conv2d_backward_bias, bad_g)


@isolated
def test_conv_rejects_channels_not_divisible_by_groups():
    x, w, b, gy = conv_setup()
    expect(ValueError, "groups", ak.conv2d, x, np.zeros((4, 1, 3, 3), F32), groups=2)
    x4 = np.zeros((2, 4, 8, 8), F32)
    expect(ValueError, "groups", ak.conv2d, x4, np.zeros((3, 2, 3, 3), F32), groups=2)
    for bad in (0, -1, -2**63, 2**63, 5):
        expect(ValueError, "groups", ak.conv2d, x4, np.zeros((4, 2, 3, 3), F32), groups=bad)
    expect(ValueError, "groups", ak.conv2d_backward_input, np.zeros((2, 3, 6, 6), F32),
           np.zeros((3, 2, 3, 3), F32), x4.shape, groups=2)
    expect(ValueError, "groups", ak.conv2d_backward_filter, x4, np.zeros((2, 3, 6, 6), F32),
           (3, 2, 3, 3), groups=2)
    expect(ValueError, "groups", ak.conv_transpose2d, np.zeros((2, 3, 6, 6), F32),
           np.zeros((3, 2, 3, 3), F32), groups=2)


@isolated
def test_conv_rejects_weight_channel_mismatch():
    x, w, b, gy = conv_setup()
    out = sentinel((2, 4, 6, 6))
    expect(ValueError, "weight", ak.conv2d, x, np.zeros((4, 2, 3, 3), F32), out=out)
    expect(ValueError, "weight", ak.conv2d, x, np.zeros((4, 4, 3, 3), F32), out=out)
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    expect(ValueError, "weight", ak.conv2d, xh, np.zeros((3, 3, 2, 4), F32), layout="NHWC")
    expect(ValueError, "weight", ak.conv2d_backward_input, gy, np.zeros((4, 2, 3, 3), F32),
           x.shape)
    expect(ValueError, r"weight|\bx\b|channel", ak.conv_transpose2d, gy,
           np.zeros((3, 3, 3, 3), F32))


@isolated
def test_conv_rejects_bad_bias():
    x, w, b, gy = conv_setup()
    out = sentinel((2, 4, 6, 6))
    for bad in (np.zeros(5, F32), np.zeros(3, F32), np.zeros((4, 1), F32), np.zeros((), F32),
                np.zeros(0, F32)):
        expect(ValueError, "bias", ak.conv2d, x, w, bad, out=out)
    for bad in (np.zeros(4, F32), np.zeros(2, F32), np.zeros((3, 1), F32), np.zeros(0, F32)):
        expect(ValueError, "bias", ak.conv_transpose2d, gy, w, bad)   # C_out is 3
    for bad in (b.astype(np.float64), b.astype(np.int32), b.astype(np.float16),
                b.astype(complex), b.astype(">f4"), b.astype(bool)):
        expect(TypeError, "bias", ak.conv2d, x, w, bad, out=out)


@isolated
def test_conv_transpose_rejects_output_padding_too_large():
    _, w, _, gy = conv_setup()
    expect(ValueError, "output_padding", ak.conv_transpose2d, gy, w, stride=2, output_padding=2)
    expect(ValueError, "output_padding", ak.conv_transpose2d, gy, w, stride=1, output_padding=1)
    expect(ValueError, "output_padding", ak.conv_transpose2d, gy, w, stride=2, dilation=3,
           output_padding=(0, 3))
    expect(ValueError, "output_padding", ak.conv_transpose2d, gy, w, stride=2, output_padding=-1)
    expect(ValueError, "output_padding", ak.conv_transpose2d, gy, w, stride=2,
           output_padding=2**63)


@isolated
def test_conv_transpose_rejects_unreachable_output_size():
    _, w, _, gy = conv_setup()      # gy (2,4,6,6) as input; default out with stride 2: 13
    for bad in ((15, 13), (12, 13), (13, 16), (0, 13), (-1, 13), (2**31, 13), (2**63, 13)):
        out = sentinel((2, 3, 13, 13))
        expect(ValueError, "output_size", ak.conv_transpose2d, gy, w, stride=2,
               output_size=bad, out=out)
    for bad in ((13,), (1, 2, 3, 4, 5), 13):
        expect((ValueError, TypeError), "output_size", ak.conv_transpose2d, gy, w, stride=2,
               output_size=bad)
    expect(ValueError, "output_size|padding|same", ak.conv_transpose2d, gy, w, stride=2,
           padding="same", output_size=(20, 12))


# ============================================================================ pooling


def _pool_calls(**params):
    x, y, idx, gy = pool_setup()
    kernel = params.pop("kernel_size", 2)
    out = [
        (ak.max_pool2d, (x, kernel), params),
        (ak.avg_pool2d, (x, kernel), params),
        (ak.avg_pool2d_backward, (gy, x.shape, kernel), params),
    ]
    unpool_params = {k: v for k, v in params.items() if k in ("stride", "padding")}
    if unpool_params or not params:
        out.append((ak.max_unpool2d, (y, idx, kernel), unpool_params))
    return out


@isolated
def test_pool_rejects_zero_or_negative_kernel():
    for bad in (0, -1, (2, 0), (-3, 2), -2**63):
        for fn, args, kw in _pool_calls(kernel_size=bad):
            expect(ValueError, "kernel_size", fn, *args, **kw)


@isolated
def test_pool_rejects_zero_or_negative_stride():
    for bad in (0, -1, (1, 0), (-2, 2), -2**63):
        for fn, args, kw in _pool_calls(stride=bad):
            expect(ValueError, "stride", fn, *args, **kw)


@isolated
def test_avg_pool_backward_rejects_zero_stride():
    """TF CVE-2022-21725: AvgPoolGrad with stride 0 divided by zero."""
    x, y, idx, gy = pool_setup()
    out = sentinel(x.shape)
    for bad in (0, (0, 2), (2, 0), (0, 0)):
        expect(ValueError, "stride", ak.avg_pool2d_backward, gy, x.shape, 2, stride=bad, out=out)
        expect(ValueError, "stride", ak.avg_pool2d_backward,
               np.ascontiguousarray(gy.transpose(0, 2, 3, 1)), (2, 8, 8, 3), 2, stride=bad,
               layout="NHWC")


@isolated
def test_pool_rejects_zero_or_negative_dilation():
    x, y, idx, gy = pool_setup()
    for bad in (0, -1, (1, 0), (-1, -1)):
        expect(ValueError, "dilation", ak.max_pool2d, x, 2, dilation=bad)
        expect(ValueError, "dilation", ak.avg_pool2d, x, 2, dilation=bad)
        expect(ValueError, "dilation", ak.avg_pool2d_backward, gy, x.shape, 2, dilation=bad)


@isolated
def test_pool_rejects_negative_padding():
    for bad in (-1, (0, -1), ((0, 0), (-1, 0))):
        for fn, args, kw in _pool_calls(padding=bad):
            expect(ValueError, "padding", fn, *args, **kw)


@isolated
def test_pool_rejects_overflowing_padding():
    for bad in (2**31, 2**32 + 3, 2**55, 2**63, ((0, 2**63), (0, 0))):
        for fn, args, kw in _pool_calls(padding=bad):
            expect((ValueError, MemoryError), r"padding|too large|2\*\*", fn, *args, **kw)


@isolated
def test_pool_rejects_window_entirely_outside_image():
    """A window with no in-image position would make max undefined / divide by 0."""
    x, y, idx, gy = pool_setup()
    cases = [dict(kernel_size=2, stride=1, padding=2),
             dict(kernel_size=3, stride=1, padding=3),
             dict(kernel_size=2, stride=1, padding=((0, 3), (0, 0))),
             dict(kernel_size=2, stride=2, padding=((2, 0), (0, 0)))]
    for geom in cases:
        expect(ValueError, "padding", ak.max_pool2d, x, **geom)
        expect(ValueError, "padding", ak.avg_pool2d, x, **geom, count_include_pad=False)
        expect(ValueError, "padding", ak.avg_pool2d, x, **geom)
        k, s = geom["kernel_size"], geom["stride"]
        (pt, pb), (pl, pr) = R.resolve_padding(geom["padding"], (8, 8), (k, k), (s, s), (1, 1))
        g = np.zeros((2, 3, R.pool_out_size(8, k, s, 1, pt, pb, False),
                      R.pool_out_size(8, k, s, 1, pl, pr, False)), F32)
        expect(ValueError, "padding", ak.avg_pool2d_backward, g, x.shape, **geom,
               count_include_pad=False, out=sentinel(x.shape))
        for geom_bad in cases:
            try:
                R.pool_geometry((8, 8), **geom_bad)
            except ValueError:
                continue
            raise AssertionError(f"test bug: {geom_bad} is valid per the reference")
    xs = np.zeros((1, 1, 2, 2), F32)
    expect(ValueError, "padding", ak.max_pool2d, xs, 2, 1, 3, dilation=5)


@isolated
def test_pool_rejects_kernel_larger_than_padded_input():
    x, y, idx, gy = pool_setup()
    for fn in (ak.max_pool2d, ak.avg_pool2d):
        expect(ValueError, r"kernel|output|size|input", fn, x, 9)
        expect(ValueError, r"kernel|output|size|input|dilation", fn, x, 3, 1, dilation=4)
        expect(ValueError, r"kernel|output|size|input", fn, x, (2, 2**31 - 1))


@isolated
def test_avg_pool_rejects_bad_divisor_override():
    x, y, idx, gy = pool_setup()
    for bad in (0, -1, -2**63):
        expect(ValueError, "divisor_override", ak.avg_pool2d, x, 2, divisor_override=bad)
        expect(ValueError, "divisor_override", ak.avg_pool2d_backward, gy, x.shape, 2,
               divisor_override=bad, out=sentinel(x.shape))
    for bad in (1.5, "2", True):
        expect(TypeError, "divisor_override", ak.avg_pool2d, x, 2, divisor_override=bad)


@isolated
def test_avg_pool_backward_rejects_inconsistent_grad_out():
    x, y, idx, gy = pool_setup()
    out = sentinel(x.shape)
    for bad in [(2, 3, 5, 4), (2, 3, 4, 3), (1, 3, 4, 4), (2, 2, 4, 4), (2, 3, 4), (2, 3, 0, 4)]:
        expect(ValueError, r"grad_out|input_shape|shape", ak.avg_pool2d_backward,
               np.zeros(bad, F32), x.shape, 2, out=out)
    for bad in [(2, 3, 0, 8), (2, 3, -8, 8), (2, 3, 2**31, 8), (2, 3, 8), (2, 3, 8, 8, 8)]:
        expect((ValueError, MemoryError), r"input_shape|grad_out|shape", ak.avg_pool2d_backward,
               gy, bad, 2)


def _bad_index_values(plane):
    return [-1, plane, plane + 1, 2**31 - 1, 2**31, 2**32 + 3, 2**62, 2**63 - 1, -2**63, -plane]


@isolated
def test_max_pool_backward_rejects_indices_outside_plane():
    """TF CVE-2021-29579: MaxPoolGrad wrote through an unchecked argmax."""
    x, y, idx, gy = pool_setup()
    plane = 8 * 8
    for bad in _bad_index_values(plane):
        for pos in [(0, 0, 0, 0), (1, 2, 3, 3), (1, 0, 2, 1)]:
            bad_idx = idx.copy()
            bad_idx[pos] = bad
            out = sentinel(x.shape)
            expect(ValueError, "indices", ak.max_pool2d_backward, gy, bad_idx, x.shape, out=out)
            out = sentinel((2, 8, 8, 3))
            expect(ValueError, "indices", ak.max_pool2d_backward,
                   np.ascontiguousarray(gy.transpose(0, 2, 3, 1)),
                   np.ascontiguousarray(bad_idx.transpose(0, 2, 3, 1)), (2, 8, 8, 3),
                   layout="NHWC", out=out)
    # an index valid for a bigger plane but not for the input_shape given
    bad_idx = idx.copy()
    bad_idx[0, 0, 0, 0] = 6 * 8
    expect(ValueError, "indices", ak.max_pool2d_backward, gy, bad_idx, (2, 3, 6, 8))


@isolated
def test_max_pool_backward_rejects_wrong_indices_dtype():
    x, y, idx, gy = pool_setup()
    for dt in (np.int32, np.uint64, np.int16, np.float64, np.float32, bool, ">i8"):
        expect(TypeError, "indices", ak.max_pool2d_backward, gy, idx.astype(dt), x.shape,
               out=sentinel(x.shape))


@isolated
def test_max_pool_backward_rejects_wrong_indices_shape():
    x, y, idx, gy = pool_setup()
    for bad in (idx[:, :, :3], idx[:1], idx[:, :2], idx[0], idx[None], idx.reshape(2, 3, 16)):
        expect(ValueError, r"indices|grad_out|shape", ak.max_pool2d_backward, gy,
               np.ascontiguousarray(bad), x.shape, out=sentinel(x.shape))


@isolated
def test_max_pool_backward_rejects_inconsistent_input_shape():
    x, y, idx, gy = pool_setup()
    for bad in [(3, 3, 8, 8), (2, 4, 8, 8), (2, 3, 0, 8), (2, 3, -1, 8), (2, 3, 8),
                (2, 3, 8, 8, 1), (2, 3, 2**31, 8), (2, 3, 2**62, 2**62)]:
        expect((ValueError, MemoryError), r"input_shape|grad_out|shape",
               ak.max_pool2d_backward, gy, idx, bad)


@isolated
def test_max_pool_rejects_window_size_overflow():
    x, y, idx, gy = pool_setup()
    for bad in (2**31, 2**55, 2**63, (2, 2**63)):
        expect(ValueError, "kernel_size", ak.max_pool2d, x, bad)
        expect(ValueError, "kernel_size", ak.avg_pool2d, x, bad)


# ============================================================================ unpool


@isolated
def test_unpool_rejects_out_of_range_indices():
    """PyTorch max_unpool2d once wrote through out-of-range indices."""
    x, y, idx, gy = pool_setup()
    plane = 8 * 8
    for bad in _bad_index_values(plane):
        for pos in [(0, 0, 0, 0), (1, 2, 3, 3)]:
            bad_idx = idx.copy()
            bad_idx[pos] = bad
            out = sentinel(x.shape)
            expect(ValueError, "indices", ak.max_unpool2d, y, bad_idx, 2, out=out)
            out = sentinel((2, 8, 8, 3))
            expect(ValueError, "indices", ak.max_unpool2d,
                   np.ascontiguousarray(y.transpose(0, 2, 3, 1)),
                   np.ascontiguousarray(bad_idx.transpose(0, 2, 3, 1)), 2, layout="NHWC",
                   out=out)
    # valid for the default 8x8 plane, not for a smaller output_size
    bad_idx = idx.copy()
    bad_idx[0, 0, 3, 3] = 7 * 8 + 7
    expect(ValueError, "indices", ak.max_unpool2d, y, bad_idx, 2, output_size=(7, 7),
           out=sentinel((2, 3, 7, 7)))


@isolated
def test_unpool_backward_rejects_out_of_range_indices():
    x, y, idx, gy = pool_setup()
    g = np.ones(x.shape, F32)
    for bad in _bad_index_values(8 * 8):
        bad_idx = idx.copy()
        bad_idx[1, 1, 1, 1] = bad
        out = sentinel(y.shape)
        expect(ValueError, "indices", ak.max_unpool2d_backward, g, bad_idx, out=out)


@isolated
def test_unpool_rejects_wrong_indices_dtype_and_shape():
    x, y, idx, gy = pool_setup()
    for dt in (np.int32, np.uint64, np.float64, ">i8"):
        expect(TypeError, "indices", ak.max_unpool2d, y, idx.astype(dt), 2,
               out=sentinel(x.shape))
        expect(TypeError, "indices", ak.max_unpool2d_backward, np.ones(x.shape, F32),
               idx.astype(dt))
    for bad in (idx[:, :, :3], idx[:1], idx[0], idx[None]):
        expect(ValueError, r"indices|shape", ak.max_unpool2d, y, np.ascontiguousarray(bad), 2)
    for bad in (idx[:1], idx[:, :2], idx[0], idx[None]):      # (N, C) must match grad_out
        expect(ValueError, r"indices|shape", ak.max_unpool2d_backward, np.ones(x.shape, F32),
               np.ascontiguousarray(bad))


@isolated
def test_unpool_rejects_unreachable_output_size():
    x, y, idx, gy = pool_setup()     # y 4x4, kernel 2 stride 2 -> default 8, range (6, 10)
    for bad in ((6, 8), (10, 8), (8, 6), (0, 8), (-1, 8), (2**31, 8), (2**63, 8)):
        expect(ValueError, "output_size", ak.max_unpool2d, y, idx, 2, output_size=bad,
               out=sentinel(x.shape))
    for bad in ((8,), (1, 2, 3, 4, 5), "ab"):
        expect((ValueError, TypeError), "output_size", ak.max_unpool2d, y, idx, 2,
               output_size=bad)


# ============================================================================ upsample


@isolated
def test_upsample_rejects_bad_scale_factor():
    x = np.ones((1, 2, 3, 4), F32)
    for bad in (0, -1, (2, 0), (-2, 2), -2**63):
        expect(ValueError, "scale_factor", ak.upsample_nearest2d, x, bad)
        expect(ValueError, "scale_factor", ak.upsample_nearest2d_backward, x, bad)
    for bad in (1.5, (2, 1.5), True, "2", None):
        expect((TypeError, ValueError), "scale_factor", ak.upsample_nearest2d, x, bad)
    for bad in ((2, 2, 2), ()):
        expect((TypeError, ValueError), "scale_factor", ak.upsample_nearest2d, x, bad)
    for bad in (2**31, 2**55, 2**63, (1, 2**40)):
        expect((ValueError, MemoryError), r"scale_factor|too large|2\*\*",
               ak.upsample_nearest2d, x, bad)


@isolated
def test_upsample_rejects_huge_output():
    x = np.ones((1, 16, 4, 4), F32)
    expect((ValueError, MemoryError), r"too large|2\*\*|scale_factor|memory",
           ak.upsample_nearest2d, x, (2**28, 2**28))
    expect((ValueError, MemoryError), r"too large|2\*\*|scale_factor|memory",
           ak.upsample_nearest2d, np.ones((1, 1, 4, 4), F32), (2**28, 2**28))


@isolated
def test_upsample_backward_rejects_indivisible_grad():
    for shape, scale in [((1, 1, 5, 4), 2), ((1, 1, 4, 5), (2, 2)), ((1, 1, 4, 4), (8, 1))]:
        expect(ValueError, r"grad_out|scale_factor|divisible|multiple",
               ak.upsample_nearest2d_backward, np.zeros(shape, F32), scale)


# ============================================================================ types


def _data_calls(make):
    """(fn, args, kwargs, argument-name) for every kernel, ``make(shape)`` building the
    float argument under test; the other arguments are valid float32/int64."""
    x, w, b, gy = conv_setup()
    px, py, pidx, pgy = pool_setup()
    return [
        (ak.conv2d, (make(x.shape), w), {}, r"\bx\b"),
        (ak.conv2d, (x, make(w.shape)), {}, "weight"),
        (ak.conv2d, (x, w, make(b.shape)), {}, "bias"),
        (ak.conv2d_backward_input, (make(gy.shape), w, x.shape), {}, "grad_out"),
        (ak.conv2d_backward_input, (gy, make(w.shape), x.shape), {}, "weight"),
        (ak.conv2d_backward_filter, (make(x.shape), gy, w.shape), {}, r"\bx\b"),
        (ak.conv2d_backward_filter, (x, make(gy.shape), w.shape), {}, "grad_out"),
        (ak.conv2d_backward_bias, (make(gy.shape),), {}, "grad_out"),
        (ak.conv_transpose2d, (make(gy.shape), w), {}, r"\bx\b"),
        (ak.conv_transpose2d, (gy, make(w.shape)), {}, "weight"),
        (ak.max_pool2d, (make(px.shape), 2), {}, r"\bx\b"),
        (ak.max_pool2d_backward, (make(pgy.shape), pidx, px.shape), {}, "grad_out"),
        (ak.avg_pool2d, (make(px.shape), 2), {}, r"\bx\b"),
        (ak.avg_pool2d_backward, (make(pgy.shape), px.shape, 2), {}, "grad_out"),
        (ak.max_unpool2d, (make(py.shape), pidx, 2), {}, r"\bx\b"),
        (ak.max_unpool2d_backward, (make(px.shape), pidx), {}, "grad_out"),
        (ak.upsample_nearest2d, (make(px.shape), 2), {}, r"\bx\b"),
        (ak.upsample_nearest2d_backward, (make(px.shape), 2), {}, "grad_out"),
    ]


@isolated
def test_rejects_unsupported_dtypes():
    for dt in (np.float16, np.int32, np.int64, np.uint8, bool, object, np.complex64,
               np.complex128, np.longdouble):
        if np.dtype(dt) in (np.dtype(np.float64),):
            continue     # longdouble == float64 on some platforms
        for fn, args, kw, name in _data_calls(lambda s: np.ones(s, dt)):
            expect(TypeError, name, fn, *args, **kw)


@isolated
def test_rejects_big_endian_inputs():
    for dt in (">f4", ">f8"):
        for fn, args, kw, name in _data_calls(lambda s: np.ones(s, dt)):
            expect(TypeError, name, fn, *args, **kw)


@isolated
def test_rejects_mixed_float_dtypes():
    x, w, b, gy = conv_setup()
    expect(TypeError, "weight", ak.conv2d, x, w.astype(np.float64))
    expect(TypeError, "bias", ak.conv2d, x, w, b.astype(np.float64))
    expect(TypeError, "weight", ak.conv2d_backward_input, gy, w.astype(np.float64), x.shape)
    expect(TypeError, "grad_out", ak.conv2d_backward_filter, x, gy.astype(np.float64), w.shape)
    expect(TypeError, "weight", ak.conv_transpose2d, gy, w.astype(np.float64))


@isolated
def test_rejects_non_array_objects():
    x, w, b, gy = conv_setup()
    for bad in (object(), "abc", {"a": 1}, None):
        expect(TypeError, r"\bx\b", ak.conv2d, bad, w)
        expect(TypeError, r"\bx\b", ak.max_pool2d, bad, 2)


@isolated
def test_rejects_bad_integer_parameters_types():
    x, w, b, gy = conv_setup()
    for bad in (1.0, 1.5, "1", True, None, (1, 1.0), [1, None]):
        expect(TypeError, "stride", ak.conv2d, x, w, stride=bad)
        expect(TypeError, "kernel_size", ak.max_pool2d, x, bad if bad is not None else 2.0)
    for bad in ((1, 1, 1), (), [1, 2, 3]):
        expect(ValueError, "stride", ak.conv2d, x, w, stride=bad)
    for bad in (1.5, (1, 0.5), ((1, 1.5), (0, 0))):
        expect(TypeError, "padding", ak.conv2d, x, w, padding=bad)
    for bad in ((1, 1, 1), ((1, 1, 1), (0, 0)), ((1,), (0, 0))):
        expect(ValueError, "padding", ak.conv2d, x, w, padding=bad)


@isolated
def test_rejects_bad_padding_string():
    x, w, b, gy = conv_setup()
    for bad in ("", "full", "same_upper_", "causal", "samelower", " same"):
        expect(ValueError, "padding", ak.conv2d, x, w, padding=bad)
        expect(ValueError, "padding", ak.max_pool2d, x, 2, padding=bad)
        expect(ValueError, "padding", ak.conv_transpose2d, gy, w, padding=bad)


@isolated
def test_rejects_bad_layout():
    x, w, b, gy = conv_setup()
    for bad in ("NCWH", "", "CHW", None, 1):
        expect((ValueError, TypeError), "layout", ak.conv2d, x, w, layout=bad)
        expect((ValueError, TypeError), "layout", ak.max_pool2d, x, 2, layout=bad)
        expect((ValueError, TypeError), "layout", ak.upsample_nearest2d, x, 2, layout=bad)


# ============================================================================ out=


@isolated
def test_out_rejects_wrong_shape_dtype_and_memory():
    x, w, b, gy = conv_setup()
    good = (2, 4, 6, 6)
    cases = [
        (ValueError, sentinel((2, 4, 6, 5))),
        (ValueError, sentinel((2, 4, 36))),
        (ValueError, sentinel((4, 6, 6))),
        (TypeError, sentinel(good, np.float64)),
        (TypeError, sentinel(good, np.int32)),
        (ValueError, sentinel((2, 4, 6, 12))[..., ::2]),
        (ValueError, np.asfortranarray(sentinel(good))),
    ]
    ro = sentinel(good)
    ro.flags.writeable = False
    cases.append((ValueError, ro))
    raw = np.zeros(np.prod(good) * 4 + 1, np.uint8)
    una = raw[1:].view(F32).reshape(good)
    una[...] = 7
    cases.append((ValueError, una))
    for exc, out in cases:
        expect(exc, r"\bout\b", ak.conv2d, x, w, b, out=out)
    expect(TypeError, r"\bout\b", ak.conv2d, x, w, b, out=[[0.0]])
    # other kernels
    px, py, pidx, pgy = pool_setup()
    for fn, args in [(ak.max_pool2d, (px, 2)), (ak.avg_pool2d, (px, 2))]:
        expect(ValueError, r"\bout\b", fn, *args, out=sentinel((2, 3, 4, 5)))
        expect(TypeError, r"\bout\b", fn, *args, out=sentinel((2, 3, 4, 4), np.float64))
    expect(ValueError, r"\bout\b", ak.max_unpool2d, py, pidx, 2, out=sentinel((2, 3, 8, 9)))
    expect(ValueError, r"\bout\b", ak.max_pool2d_backward, pgy, pidx, px.shape,
           out=sentinel((2, 3, 8, 8))[:, :, ::-1])
    expect(TypeError, r"\bout\b", ak.conv2d_backward_filter, x, gy, w.shape,
           out=sentinel(w.shape, np.float64))
    expect(ValueError, r"\bout\b", ak.conv2d_backward_input, gy, w, x.shape,
           out=sentinel((2, 3, 8, 7)))


@isolated
def test_out_rejects_overlapping_input():
    x = np.random.default_rng(3).standard_normal((1, 3, 5, 5)).astype(F32)
    w = np.random.default_rng(4).standard_normal((3, 3, 1, 1)).astype(F32)
    expect(ValueError, r"\bout\b", ak.conv2d, x, w, out=x)
    expect(ValueError, r"\bout\b", ak.avg_pool2d, x, 1, out=x)
    expect(ValueError, r"\bout\b", ak.max_pool2d, x, 1, out=x)
    buf = np.zeros(2 * 3 * 5 * 5, F32)
    xin = buf[:75].reshape(1, 3, 5, 5)
    xin[...] = x
    shifted = buf[25:100].reshape(1, 3, 5, 5)         # overlaps xin's last two channels
    expect(ValueError, r"\bout\b", ak.conv2d, xin, w, out=shifted)
    gy = np.ones((1, 3, 5, 5), F32)
    expect(ValueError, r"\bout\b", ak.conv2d_backward_input, gy, w, gy.shape, out=gy)
    expect(ValueError, r"\bout\b", ak.avg_pool2d_backward, gy, gy.shape, 1, out=gy)
    # backward_filter writing into the buffer of its own input x
    big = np.ones(3 * 3 * 5 * 5, F32)
    xs = big[:75].reshape(1, 3, 5, 5)
    expect(ValueError, r"\bout\b", ak.conv2d_backward_filter, xs, np.ones((1, 3, 1, 1), F32),
           (3, 3, 5, 5), out=big.reshape(3, 3, 5, 5))
