"""Crash-prone calls, each run in a child process (hardening_util.run_isolated).

Two kinds of case, both registered in CASES as name -> (expect, function):

* ``api_*``: the public API with the bad inputs of TESTING.md's CVE classes;
* ``raw_*``: the backend kernels called directly (``aekernels._dispatch.kernels()``),
  bypassing every check of ``_api``, with shapes/indices/parameters inconsistent with
  each other.  The backend contract promises that native code re-checks the sizes it
  relies on; defence in depth means the numba backend must not corrupt memory either.

The child picks the backend from AEKERNELS_BACKEND.  ``expect`` is one of
  "error"   ValueError or TypeError (MemoryError too where the case says so: "error|mem")
  "raise"   any Exception (e.g. a dtype the kernel has no specialisation for)
  "nocrash" anything but a crash (a sanitizer report is a crash: the child aborts)
"""
from __future__ import annotations

import numpy as np

import aekernels
from aekernels import _dispatch

CASES: dict[str, tuple[str, object]] = {}

F32, F64, I64 = np.float32, np.float64, np.int64


def case(expect: str):
    def deco(fn):
        CASES[fn.__name__] = (expect, fn)
        return fn
    return deco


def K():
    return _dispatch.kernels()


def z(shape, dt=F32):
    return np.zeros(shape, dt)


def o(shape, dt=F32):
    return np.ones(shape, dt)


HUGE = (2**31, 2**32 + 3, 2**55, 2**63 - 1)

# =============================================================================== API level
# (each runs the bad call for every value in its list; the first value not refused
# with the right exception makes the case return a description, which fails the test)


def _refused(calls, allowed=(ValueError, TypeError)):
    """None if every call raised one of ``allowed``, else what went wrong (first case)."""
    for what, call in calls:
        try:
            r = call()
        except allowed:
            continue
        except BaseException as exc:
            return f"{what}: raised {type(exc).__name__}: {exc}"
        return f"accepted: {what} -> {getattr(r, 'shape', r)!r}"
    return None


def _refuses(*groups):
    """Each group is a list of calls, or (calls, allowed).  Raises ValueError if all
    were refused as required (the "error" outcome), returns the problems otherwise."""
    problems = []
    for g in groups:
        calls, allowed = g if isinstance(g, tuple) else (g, (ValueError, TypeError))
        p = _refused(calls, allowed)
        if p:
            problems.append(p)
    if problems:
        return "; ".join(problems)
    raise ValueError("all refused")


# --- CVE-2021-29579 (TF MaxPoolGrad out-of-bounds argmax) -----------------------------

@case("error")
def api_max_pool_backward_indices_outside_plane():
    x = np.arange(2 * 3 * 6 * 6, dtype=F32).reshape(2, 3, 6, 6)
    y, idx = aekernels.max_pool2d(x, 2, return_indices=True)
    calls = []
    for bad in (-1, 36, 37, 2**31, 2**32 + 3, 2**63 - 1, -(2**63)):
        for pos in ((0, 0, 0, 0), (1, 2, 2, 2)):
            i = idx.copy()
            i[pos] = bad
            calls.append((f"index {bad} at {pos}",
                          lambda i=i: aekernels.max_pool2d_backward(y, i, x.shape)))
    i32 = idx.astype(np.int32)
    calls.append(("int32 indices", lambda: aekernels.max_pool2d_backward(y, i32, x.shape)))
    calls.append(("indices of another shape",
                  lambda: aekernels.max_pool2d_backward(y, idx[:, :, :2], x.shape)))
    calls.append(("input_shape smaller than the indices' plane",
                  lambda: aekernels.max_pool2d_backward(y, idx, (2, 3, 4, 4))))
    nhwc = np.ascontiguousarray(idx.transpose(0, 2, 3, 1))
    nhwc[1, 2, 1, 2] = 36
    calls.append(("NHWC index beyond the plane",
                  lambda: aekernels.max_pool2d_backward(
                      np.ascontiguousarray(y.transpose(0, 2, 3, 1)), nhwc, (2, 6, 6, 3),
                      layout="NHWC")))
    return _refuses(calls)


# --- CVE-2021-29540 (TF Conv2DBackpropFilter heap overflow from unchecked filter sizes) -

@case("error")
def api_conv_backward_filter_inconsistent_filter_sizes():
    x = o((2, 3, 6, 6))
    gy = o((2, 4, 4, 4))           # conv 3x3, stride 1, no padding
    calls = [
        ("filter larger than the input", lambda: aekernels.conv2d_backward_filter(x, gy, (4, 3, 7, 7))),
        ("filter size inconsistent with grad_out", lambda: aekernels.conv2d_backward_filter(x, gy, (4, 3, 2, 2))),
        ("filter 5x5 vs grad for 3x3", lambda: aekernels.conv2d_backward_filter(x, gy, (4, 3, 5, 5))),
        ("out-channels != grad channels", lambda: aekernels.conv2d_backward_filter(x, gy, (5, 3, 3, 3))),
        ("in-channels != x channels", lambda: aekernels.conv2d_backward_filter(x, gy, (4, 2, 3, 3))),
        ("in-channels != x/groups", lambda: aekernels.conv2d_backward_filter(x, gy, (4, 3, 3, 3), groups=3)),
        ("huge filter", lambda: aekernels.conv2d_backward_filter(x, gy, (4, 3, 2**31, 3))),
        ("2**63 filter", lambda: aekernels.conv2d_backward_filter(x, gy, (4, 3, 3, 2**63))),
        ("negative filter", lambda: aekernels.conv2d_backward_filter(x, gy, (4, 3, -3, 3))),
        ("zero filter", lambda: aekernels.conv2d_backward_filter(x, gy, (4, 3, 0, 3))),
        ("5-entry weight_shape", lambda: aekernels.conv2d_backward_filter(x, gy, (4, 3, 3, 3, 1))),
        ("NHWC HWIO mismatch", lambda: aekernels.conv2d_backward_filter(
            o((2, 6, 6, 3)), o((2, 4, 4, 4)), (3, 3, 4, 4), layout="NHWC")),
        ("out= of a different filter size", lambda: aekernels.conv2d_backward_filter(
            x, gy, (4, 3, 3, 3), out=z((4, 3, 5, 5)))),
    ]
    return _refuses(calls)


# --- CVE-2021-29525 (TF Conv2DBackpropInput division by zero on an empty filter) -------

@case("error")
def api_conv_backward_input_empty_filter():
    gy = o((1, 2, 4, 4))
    calls = []
    for shape in ((2, 3, 0, 3), (2, 3, 3, 0), (2, 0, 3, 3), (0, 3, 3, 3), (0, 0, 0, 0)):
        w = z(shape)
        calls.append((f"weight {shape}", lambda w=w: aekernels.conv2d_backward_input(gy, w, (1, 3, 6, 6))))
        calls.append((f"weight {shape} groups=3", lambda w=w: aekernels.conv2d_backward_input(
            gy, w, (1, 3, 6, 6), groups=3)))
        calls.append((f"conv2d weight {shape}", lambda w=w: aekernels.conv2d(o((1, 3, 6, 6)), w)))
        calls.append((f"conv_transpose2d weight {shape}",
                      lambda w=w: aekernels.conv_transpose2d(o((1, 2, 4, 4)), w)))
    calls.append(("groups=0", lambda: aekernels.conv2d_backward_input(gy, o((2, 3, 3, 3)), (1, 3, 6, 6), groups=0)))
    calls.append(("empty input_shape", lambda: aekernels.conv2d_backward_input(gy, o((2, 3, 3, 3)), (1, 0, 6, 6))))
    return _refuses(calls)


# --- CVE-2022-21725 (TF AvgPoolGrad stride 0) ------------------------------------------

@case("error")
def api_avg_pool_backward_zero_stride():
    gy = o((1, 2, 3, 3))
    calls = []
    for s in (0, (0, 1), (1, 0), (0, 0), -1, (1, -2), -(2**63), 2**63):
        calls.append((f"stride={s!r}", lambda s=s: aekernels.avg_pool2d_backward(gy, (1, 2, 6, 6), 2, s)))
        calls.append((f"avg_pool2d stride={s!r}", lambda s=s: aekernels.avg_pool2d(o((1, 2, 6, 6)), 2, s)))
        calls.append((f"max_pool2d stride={s!r}", lambda s=s: aekernels.max_pool2d(o((1, 2, 6, 6)), 2, s)))
    for k in (0, (0, 2), -1):
        calls.append((f"kernel_size={k!r}", lambda k=k: aekernels.avg_pool2d_backward(gy, (1, 2, 6, 6), k, 2)))
    calls.append(("divisor_override=0", lambda: aekernels.avg_pool2d_backward(
        gy, (1, 2, 6, 6), 2, divisor_override=0)))
    calls.append(("window entirely in padding", lambda: aekernels.avg_pool2d_backward(
        o((1, 2, 5, 5)), (1, 2, 6, 6), 2, 2, padding=((2, 0), (0, 0)), count_include_pad=False)))
    return _refuses(calls)


# --- PyTorch max_unpool2d out-of-range indices -----------------------------------------

@case("error")
def api_unpool_out_of_range_indices():
    x = o((2, 3, 3, 3))
    calls = []
    for bad in (-1, 36, 37, 2**31, 2**32 + 3, 2**63 - 1, -(2**63)):
        i = np.zeros((2, 3, 3, 3), I64)
        i[1, 2, 2, 2] = bad
        calls.append((f"unpool index {bad}", lambda i=i: aekernels.max_unpool2d(x, i, 2)))
        calls.append((f"unpool index {bad} output_size (5, 5)",
                      lambda i=i: aekernels.max_unpool2d(x, i, 2, output_size=(5, 5))))
        calls.append((f"unpool backward index {bad}", lambda i=i: aekernels.max_unpool2d_backward(o((2, 3, 6, 6)), i)))
    i = np.zeros((2, 3, 3, 3), I64)
    calls.append(("index 25 >= 5*5 output_size", lambda: aekernels.max_unpool2d(
        x, np.where(i == 0, 25, i), 2, output_size=(5, 5))))
    calls.append(("uint64 indices", lambda: aekernels.max_unpool2d(x, i.astype(np.uint64), 2)))
    calls.append(("float indices", lambda: aekernels.max_unpool2d(x, i.astype(F64), 2)))
    calls.append(("indices of another shape", lambda: aekernels.max_unpool2d(x, i[:, :, :2], 2)))
    calls.append(("backward: indices batch != grad batch",
                  lambda: aekernels.max_unpool2d_backward(o((1, 3, 6, 6)), i)))
    return _refuses(calls)


# --- PyTorch conv int overflow on huge padding -----------------------------------------

@case("error")
def api_conv_overflowing_padding():
    x, w = o((1, 1, 3, 3)), o((1, 1, 3, 3))
    calls = []
    for p in (2**31, 2**31 - 1, 2**30, 2**32 + 3, 2**55, 2**62, 2**63 - 1, 2**63, 2**64,
              (0, 2**31), ((0, 2**63), (0, 0))):
        calls.append((f"conv2d padding={p!r}", lambda p=p: aekernels.conv2d(x, w, padding=p)))
        calls.append((f"conv2d_backward_input padding={p!r}",
                      lambda p=p: aekernels.conv2d_backward_input(o((1, 1, 1, 1)), w, (1, 1, 3, 3), padding=p)))
        calls.append((f"conv2d_backward_filter padding={p!r}",
                      lambda p=p: aekernels.conv2d_backward_filter(x, o((1, 1, 1, 1)), (1, 1, 3, 3), padding=p)))
        calls.append((f"conv_transpose2d padding={p!r}",
                      lambda p=p: aekernels.conv_transpose2d(x, w, padding=p)))
    for s in HUGE:
        calls.append((f"input_shape H={s}", lambda s=s: aekernels.conv2d_backward_input(
            o((1, 1, 1, 1)), w, (1, 1, s, 3))))
        calls.append((f"conv_transpose2d output_size={s}", lambda s=s: aekernels.conv_transpose2d(
            x, w, stride=2, output_size=(s, 7))))
        calls.append((f"dilation={s}", lambda s=s: aekernels.conv2d(x, w, dilation=s)))
        calls.append((f"stride={s}", lambda s=s: aekernels.conv2d(x, w, stride=s)))
    # e.g. 2**30 is in range but the result would have > 2**31 rows: ValueError, or
    # MemoryError for a result too big to allocate; never a crash
    return _refuses((calls, (ValueError, TypeError, MemoryError)))


@case("error")
def api_pool_huge_padding_refused_cheaply():
    """Pooling: a huge padding puts whole windows in the padding -> ValueError, found
    cheaply (no O(padding) work or memory before refusing: finding F3)."""
    import os
    x = o((1, 1, 3, 3))
    pads = (2**31 - 1, 2**30, 2**29, (0, 2**30), ((2**30, 0), (0, 0)), 2**31, 2**63)
    if os.environ.get("AEKERNELS_SANITIZED") == "1":
        # no RLIMIT_AS under ASAN: while F3 is open, 2**29/2**30 would make ASAN page in
        # gigabytes for minutes; 2**31-1 shows the same bug with one 5 GiB request
        pads = (2**31 - 1, 2**31, 2**63)
    pool = []
    for p in pads:
        pool += [(f"max_pool2d padding={p!r}", lambda p=p: aekernels.max_pool2d(x, 3, padding=p)),
                 (f"avg_pool2d padding={p!r}", lambda p=p: aekernels.avg_pool2d(x, 3, padding=p)),
                 (f"avg_pool2d_backward padding={p!r}", lambda p=p: aekernels.avg_pool2d_backward(
                     o((1, 1, 1, 1)), (1, 1, 3, 3), 3, padding=p))]
    return _refuses(pool)


@case("error")
def api_conv_negative_dilation():
    x, w = o((1, 2, 7, 7)), o((2, 2, 3, 3))
    calls = []
    for d in (-1, -2, (1, -1), (-1, 1), -(2**31), -(2**63), 0, (0, 1)):
        calls += [
            (f"conv2d dilation={d!r}", lambda d=d: aekernels.conv2d(x, w, dilation=d)),
            (f"backward_input dilation={d!r}", lambda d=d: aekernels.conv2d_backward_input(
                o((1, 2, 5, 5)), w, x.shape, dilation=d)),
            (f"backward_filter dilation={d!r}", lambda d=d: aekernels.conv2d_backward_filter(
                x, o((1, 2, 5, 5)), w.shape, dilation=d)),
            (f"conv_transpose2d dilation={d!r}", lambda d=d: aekernels.conv_transpose2d(x, w, dilation=d)),
            (f"max_pool2d dilation={d!r}", lambda d=d: aekernels.max_pool2d(x, 2, dilation=d)),
            (f"avg_pool2d dilation={d!r}", lambda d=d: aekernels.avg_pool2d(x, 2, dilation=d)),
        ]
    return _refuses(calls)


@case("error")
def api_zero_or_negative_stride_kernel_scale_groups():
    x, w = o((1, 2, 7, 7)), o((2, 2, 3, 3))
    calls = []
    for v in (0, -1, (0, 1), (1, 0), -(2**63)):
        calls += [
            (f"conv2d stride={v!r}", lambda v=v: aekernels.conv2d(x, w, stride=v)),
            (f"conv_transpose2d stride={v!r}", lambda v=v: aekernels.conv_transpose2d(x, w, stride=v)),
            (f"max_pool2d kernel={v!r}", lambda v=v: aekernels.max_pool2d(x, v)),
            (f"max_unpool2d stride={v!r}", lambda v=v: aekernels.max_unpool2d(
                o((1, 2, 3, 3)), np.zeros((1, 2, 3, 3), I64), 2, v)),
            (f"upsample scale={v!r}", lambda v=v: aekernels.upsample_nearest2d(x, v)),
            (f"upsample backward scale={v!r}", lambda v=v: aekernels.upsample_nearest2d_backward(x, v)),
        ]
    for g in (0, -1, 3, 2**63):
        calls.append((f"groups={g}", lambda g=g: aekernels.conv2d(x, w, groups=g)))
    return _refuses(calls)


# ================================================================== raw backend kernels


def _conv_ok():
    # a consistent forward conv: x (1,3,5,5), w (2,3,3,3), y (1,2,3,3), no padding
    return o((1, 3, 5, 5)), o((2, 3, 3, 3)), z((1, 2, 3, 3))


def _reg(name, expect, fn):
    def f():
        return fn()
    f.__name__ = name
    CASES[name] = (expect, f)
    globals()[name] = f


# conv2d_forward(x, w, bias, y, sh, sw, pt, pl, dh, dw, groups, nhwc)
_RAW = [
    ("raw_conv_forward_weight_in_channels_mismatch", "error",
     lambda: K().conv2d_forward(o((1, 3, 5, 5)), o((2, 4, 3, 3)), None, z((1, 2, 3, 3)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_forward_output_channels_mismatch", "error",
     lambda: K().conv2d_forward(o((1, 3, 5, 5)), o((2, 3, 3, 3)), None, z((1, 5, 3, 3)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_forward_batch_mismatch", "error",
     lambda: K().conv2d_forward(o((1, 3, 5, 5)), o((2, 3, 3, 3)), None, z((4, 2, 3, 3)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_forward_bias_too_short", "error",
     lambda: K().conv2d_forward(*_conv_ok()[:2], o((1,)), _conv_ok()[2], 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_forward_groups_zero", "error",
     lambda: K().conv2d_forward(*_conv_ok()[:2], None, _conv_ok()[2], 1, 1, 0, 0, 1, 1, 0, False)),
    ("raw_conv_forward_groups_not_dividing", "error",
     lambda: K().conv2d_forward(o((1, 3, 5, 5)), o((2, 1, 3, 3)), None, z((1, 2, 3, 3)), 1, 1, 0, 0, 1, 1, 3, False)),
    ("raw_conv_forward_nhwc_flag_on_nchw_arrays", "error",
     lambda: K().conv2d_forward(o((1, 3, 5, 5)), o((2, 3, 3, 3)), None, z((1, 2, 3, 3)), 1, 1, 0, 0, 1, 1, 1, True)),
    ("raw_conv_forward_stride_zero", "nocrash",
     lambda: K().conv2d_forward(*_conv_ok()[:2], None, _conv_ok()[2], 0, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_forward_negative_dilation", "nocrash",
     lambda: K().conv2d_forward(*_conv_ok()[:2], None, _conv_ok()[2], 1, 1, 0, 0, -1, 1, 1, False)),
    ("raw_conv_forward_negative_padding", "nocrash",
     lambda: K().conv2d_forward(*_conv_ok()[:2], None, _conv_ok()[2], 1, 1, -5, -5, 1, 1, 1, False)),
    ("raw_conv_forward_huge_padding", "nocrash",
     lambda: K().conv2d_forward(*_conv_ok()[:2], None, _conv_ok()[2], 1, 1, 2**62, 2**62, 1, 1, 1, False)),
    ("raw_conv_forward_huge_stride_dilation", "nocrash",
     lambda: K().conv2d_forward(*_conv_ok()[:2], None, _conv_ok()[2], 2**62, 2**62, 0, 0, 2**62, 2**62, 1, False)),
    ("raw_conv_forward_output_larger_than_geometry", "nocrash",
     lambda: K().conv2d_forward(o((1, 3, 5, 5)), o((2, 3, 3, 3)), None, z((1, 2, 40, 40)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_forward_mixed_dtypes", "raise",
     lambda: K().conv2d_forward(o((1, 3, 5, 5)), o((2, 3, 3, 3), F64), None, z((1, 2, 3, 3)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_forward_int_arrays", "raise",
     lambda: K().conv2d_forward(o((1, 3, 5, 5), I64), o((2, 3, 3, 3), I64), None, z((1, 2, 3, 3), I64), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_forward_rank3", "error",
     lambda: K().conv2d_forward(o((3, 5, 5)), o((2, 3, 3, 3)), None, z((1, 2, 3, 3)), 1, 1, 0, 0, 1, 1, 1, False)),
    # conv2d_backward_input(gy, w, gx, ...)
    ("raw_conv_backward_input_weight_channels_mismatch", "error",
     lambda: K().conv2d_backward_input(o((1, 2, 3, 3)), o((2, 4, 3, 3)), z((1, 3, 5, 5)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_input_grad_channels_mismatch", "error",
     lambda: K().conv2d_backward_input(o((1, 7, 3, 3)), o((2, 3, 3, 3)), z((1, 3, 5, 5)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_input_batch_mismatch", "error",
     lambda: K().conv2d_backward_input(o((3, 2, 3, 3)), o((2, 3, 3, 3)), z((1, 3, 5, 5)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_input_empty_filter", "nocrash",
     lambda: K().conv2d_backward_input(o((1, 2, 3, 3)), o((2, 3, 0, 3)), z((1, 3, 5, 5)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_input_groups_zero", "error",
     lambda: K().conv2d_backward_input(o((1, 2, 3, 3)), o((2, 3, 3, 3)), z((1, 3, 5, 5)), 1, 1, 0, 0, 1, 1, 0, False)),
    ("raw_conv_backward_input_grad_larger_than_geometry", "nocrash",
     lambda: K().conv2d_backward_input(o((1, 2, 30, 30)), o((2, 3, 3, 3)), z((1, 3, 5, 5)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_input_stride_zero", "nocrash",
     lambda: K().conv2d_backward_input(o((1, 2, 3, 3)), o((2, 3, 3, 3)), z((1, 3, 5, 5)), 0, 0, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_input_huge_padding", "nocrash",
     lambda: K().conv2d_backward_input(o((1, 2, 3, 3)), o((2, 3, 3, 3)), z((1, 3, 5, 5)), 1, 1, 2**62, 2**62, 1, 1, 1, False)),
    # conv2d_backward_filter(x, gy, gw, ...)   (CVE-2021-29540 class)
    ("raw_conv_backward_filter_gw_in_channels_mismatch", "error",
     lambda: K().conv2d_backward_filter(o((1, 3, 5, 5)), o((1, 2, 3, 3)), z((2, 5, 3, 3)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_filter_gw_out_channels_mismatch", "error",
     lambda: K().conv2d_backward_filter(o((1, 3, 5, 5)), o((1, 2, 3, 3)), z((6, 3, 3, 3)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_filter_batch_mismatch", "error",
     lambda: K().conv2d_backward_filter(o((1, 3, 5, 5)), o((3, 2, 3, 3)), z((2, 3, 3, 3)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_filter_filter_larger_than_input", "nocrash",
     lambda: K().conv2d_backward_filter(o((1, 3, 5, 5)), o((1, 2, 3, 3)), z((2, 3, 40, 40)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_filter_grad_larger_than_geometry", "nocrash",
     lambda: K().conv2d_backward_filter(o((1, 3, 5, 5)), o((1, 2, 30, 30)), z((2, 3, 3, 3)), 1, 1, 0, 0, 1, 1, 1, False)),
    ("raw_conv_backward_filter_groups_zero", "error",
     lambda: K().conv2d_backward_filter(o((1, 3, 5, 5)), o((1, 2, 3, 3)), z((2, 3, 3, 3)), 1, 1, 0, 0, 1, 1, 0, False)),
    # conv2d_backward_bias(gy, gb, nhwc)
    ("raw_conv_backward_bias_gb_too_short", "error",
     lambda: K().conv2d_backward_bias(o((2, 5, 3, 3)), z((2,)), False)),
    ("raw_conv_backward_bias_gb_rank2", "error",
     lambda: K().conv2d_backward_bias(o((2, 5, 3, 3)), z((5, 1)), False)),
    # max_pool2d_forward(x, y, indices, kh, kw, sh, sw, pt, pl, dh, dw, nhwc)
    ("raw_max_pool_forward_channels_mismatch", "error",
     lambda: K().max_pool2d_forward(o((1, 2, 4, 4)), z((1, 5, 2, 2)), None, 2, 2, 2, 2, 0, 0, 1, 1, False)),
    ("raw_max_pool_forward_indices_shape_mismatch", "error",
     lambda: K().max_pool2d_forward(o((1, 2, 4, 4)), z((1, 2, 2, 2)), z((1, 2, 1, 1), I64), 2, 2, 2, 2, 0, 0, 1, 1, False)),
    ("raw_max_pool_forward_output_larger_than_geometry", "nocrash",
     lambda: K().max_pool2d_forward(o((1, 2, 4, 4)), z((1, 2, 30, 30)), z((1, 2, 30, 30), I64), 2, 2, 2, 2, 0, 0, 1, 1, False)),
    ("raw_max_pool_forward_zero_kernel", "nocrash",
     lambda: K().max_pool2d_forward(o((1, 2, 4, 4)), z((1, 2, 2, 2)), z((1, 2, 2, 2), I64), 0, 0, 2, 2, 0, 0, 1, 1, False)),
    ("raw_max_pool_forward_window_in_padding", "nocrash",
     lambda: K().max_pool2d_forward(o((1, 2, 4, 4)), z((1, 2, 2, 2)), z((1, 2, 2, 2), I64), 2, 2, 2, 2, 5, 5, 1, 1, False)),
    # max_pool2d_backward(gy, indices, gx, nhwc)   (CVE-2021-29579 class)
    ("raw_max_pool_backward_index_equal_plane", "error",
     lambda: K().max_pool2d_backward(o((1, 2, 2, 2)), np.full((1, 2, 2, 2), 16, I64), z((1, 2, 4, 4)), False)),
    ("raw_max_pool_backward_index_negative", "error",
     lambda: K().max_pool2d_backward(o((1, 2, 2, 2)), np.full((1, 2, 2, 2), -1, I64), z((1, 2, 4, 4)), False)),
    ("raw_max_pool_backward_index_2_32_plus_3", "error",
     lambda: K().max_pool2d_backward(o((1, 2, 2, 2)), np.full((1, 2, 2, 2), 2**32 + 3, I64), z((1, 2, 4, 4)), False)),
    ("raw_max_pool_backward_index_int64_min", "error",
     lambda: K().max_pool2d_backward(o((1, 2, 2, 2)), np.full((1, 2, 2, 2), -(2**63), I64), z((1, 2, 4, 4)), False)),
    ("raw_max_pool_backward_index_beyond_plane_nhwc", "error",
     lambda: K().max_pool2d_backward(o((1, 2, 2, 2)), np.full((1, 2, 2, 2), 16, I64), z((1, 4, 4, 2)), True)),
    ("raw_max_pool_backward_indices_shape_mismatch", "error",
     lambda: K().max_pool2d_backward(o((1, 2, 2, 2)), np.zeros((1, 2, 1, 1), I64), z((1, 2, 4, 4)), False)),
    ("raw_max_pool_backward_channels_mismatch", "error",
     lambda: K().max_pool2d_backward(o((1, 2, 2, 2)), np.zeros((1, 2, 2, 2), I64), z((1, 1, 4, 4)), False)),
    ("raw_max_pool_backward_int32_indices", "nocrash",
     lambda: K().max_pool2d_backward(o((1, 2, 2, 2)), np.zeros((1, 2, 2, 2), np.int32), z((1, 2, 4, 4)), False)),
    # avg_pool2d_forward/backward(..., kh, kw, sh, sw, pt, pb, pl, pr, dh, dw, cip, div, nhwc)
    ("raw_avg_pool_backward_stride_zero", "error",
     lambda: K().avg_pool2d_backward(o((1, 2, 2, 2)), z((1, 2, 4, 4)), 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, True, 0, False)),
    ("raw_avg_pool_forward_stride_zero", "error",
     lambda: K().avg_pool2d_forward(o((1, 2, 4, 4)), z((1, 2, 2, 2)), 2, 2, 0, 0, 0, 0, 0, 0, 1, 1, True, 0, False)),
    ("raw_avg_pool_backward_window_in_padding_excl_pad", "nocrash",
     lambda: K().avg_pool2d_backward(o((1, 2, 2, 2)), z((1, 2, 4, 4)), 2, 2, 2, 2, 6, 0, 6, 0, 1, 1, False, 0, False)),
    ("raw_avg_pool_forward_window_in_padding_excl_pad", "nocrash",
     lambda: K().avg_pool2d_forward(o((1, 2, 4, 4)), z((1, 2, 2, 2)), 2, 2, 2, 2, 6, 0, 6, 0, 1, 1, False, 0, False)),
    ("raw_avg_pool_backward_channels_mismatch", "error",
     lambda: K().avg_pool2d_backward(o((1, 3, 2, 2)), z((1, 2, 4, 4)), 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, True, 0, False)),
    ("raw_avg_pool_backward_grad_larger_than_geometry", "nocrash",
     lambda: K().avg_pool2d_backward(o((1, 2, 30, 30)), z((1, 2, 4, 4)), 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, True, 0, False)),
    ("raw_avg_pool_forward_negative_divisor", "nocrash",
     lambda: K().avg_pool2d_forward(o((1, 2, 4, 4)), z((1, 2, 2, 2)), 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, True, -1, False)),
    # max_unpool2d_forward(x, indices, y, nhwc), max_unpool2d_backward(gy, indices, gx, nhwc)
    ("raw_unpool_forward_index_equal_plane", "error",
     lambda: K().max_unpool2d_forward(o((1, 2, 2, 2)), np.full((1, 2, 2, 2), 16, I64), z((1, 2, 4, 4)), False)),
    ("raw_unpool_forward_index_negative", "error",
     lambda: K().max_unpool2d_forward(o((1, 2, 2, 2)), np.full((1, 2, 2, 2), -1, I64), z((1, 2, 4, 4)), False)),
    ("raw_unpool_forward_index_2_31", "error",
     lambda: K().max_unpool2d_forward(o((1, 2, 2, 2)), np.full((1, 2, 2, 2), 2**31, I64), z((1, 2, 4, 4)), False)),
    ("raw_unpool_forward_index_beyond_plane_nhwc", "error",
     lambda: K().max_unpool2d_forward(o((1, 2, 2, 2)), np.full((1, 2, 2, 2), 16, I64), z((1, 4, 4, 2)), True)),
    ("raw_unpool_forward_indices_shape_mismatch", "error",
     lambda: K().max_unpool2d_forward(o((1, 2, 2, 2)), np.zeros((1, 2, 3, 3), I64), z((1, 2, 4, 4)), False)),
    ("raw_unpool_forward_channels_mismatch", "error",
     lambda: K().max_unpool2d_forward(o((1, 2, 2, 2)), np.zeros((1, 2, 2, 2), I64), z((1, 5, 4, 4)), False)),
    ("raw_unpool_backward_index_equal_plane", "error",
     lambda: K().max_unpool2d_backward(o((1, 2, 4, 4)), np.full((1, 2, 2, 2), 16, I64), z((1, 2, 2, 2)), False)),
    ("raw_unpool_backward_index_negative", "error",
     lambda: K().max_unpool2d_backward(o((1, 2, 4, 4)), np.full((1, 2, 2, 2), -3, I64), z((1, 2, 2, 2)), False)),
    ("raw_unpool_backward_gx_shape_mismatch", "error",
     lambda: K().max_unpool2d_backward(o((1, 2, 4, 4)), np.zeros((1, 2, 2, 2), I64), z((1, 2, 3, 3)), False)),
    ("raw_unpool_backward_channels_mismatch", "error",
     lambda: K().max_unpool2d_backward(o((1, 1, 4, 4)), np.zeros((1, 2, 2, 2), I64), z((1, 2, 2, 2)), False)),
    # upsample_nearest2d_forward/backward(src, dst, fh, fw, nhwc)
    ("raw_upsample_forward_zero_scale", "error",
     lambda: K().upsample_nearest2d_forward(o((1, 2, 3, 3)), z((1, 2, 6, 6)), 0, 0, False)),
    ("raw_upsample_forward_output_too_large", "error",
     lambda: K().upsample_nearest2d_forward(o((1, 2, 3, 3)), z((1, 2, 20, 20)), 2, 2, False)),
    ("raw_upsample_forward_channels_mismatch", "error",
     lambda: K().upsample_nearest2d_forward(o((1, 2, 3, 3)), z((1, 4, 6, 6)), 2, 2, False)),
    ("raw_upsample_backward_zero_scale", "error",
     lambda: K().upsample_nearest2d_backward(o((1, 2, 6, 6)), z((1, 2, 3, 3)), 0, 0, False)),
    ("raw_upsample_backward_grad_too_small", "error",
     lambda: K().upsample_nearest2d_backward(o((1, 2, 5, 5)), z((1, 2, 3, 3)), 2, 2, False)),
    ("raw_upsample_backward_negative_scale", "error",
     lambda: K().upsample_nearest2d_backward(o((1, 2, 6, 6)), z((1, 2, 3, 3)), -2, -2, False)),
]
for _name, _expect, _fn in _RAW:
    _reg(_name, _expect, _fn)
RAW_CASES = [n for n, _, _ in _RAW]
API_CASES = [n for n in CASES if n.startswith("api_")]

for _n in API_CASES:
    globals()[_n] = CASES[_n][1]


def outcome_ok(expect: str, outcome: str, detail: str = "") -> bool:
    """Does a child's outcome satisfy ``expect``?"""
    if outcome in ("CRASH", "MISSING"):
        return False
    if expect == "nocrash":
        return True
    if expect == "raise":
        return outcome not in ("returned",) and outcome not in (
            "SystemExit", "KeyboardInterrupt")
    if expect == "error":
        return outcome in ("ValueError", "TypeError")
    raise AssertionError(expect)


# ============================================================ huge-but-valid -> MemoryError
# Every size here is < 2**31 per extent and < 2**62 elements (so the contract accepts
# it), but the result would need ~2**56 elements (>= 256 PiB): allocation must fail
# cleanly with MemoryError (ASAN build: allocator_may_return_null=1) before any kernel
# runs.  (~2**60 float64 elements, 2**63 bytes, makes numpy itself raise ValueError
# "array is too big" instead: finding F4.)

def _memory_errors(calls):
    for what, call in calls:
        try:
            r = call()
        except MemoryError:
            continue
        except BaseException as exc:
            raise AssertionError(f"{what}: {type(exc).__name__}: {exc}") from None
        raise AssertionError(f"{what}: returned {getattr(r, 'shape', r)!r}")
    return "all MemoryError"


_H = 2**28
_P = 2**27


def mem_huge_results():
    calls = []
    for dt in (F32, F64):
        one = o((1, 1, 1, 1), dt)
        calls += [(f"{np.dtype(dt).name}: {what}", call) for what, call in [
            ("conv2d padding=2**27", lambda one=one: aekernels.conv2d(one, one, padding=_P)),
            ("conv_transpose2d stride=2**27", lambda dt=dt, one=one: aekernels.conv_transpose2d(
                o((1, 1, 3, 3), dt), one, stride=_P)),
            ("upsample_nearest2d scale=2**27", lambda dt=dt: aekernels.upsample_nearest2d(
                o((1, 1, 2, 2), dt), _P)),
            ("max_unpool2d kernel=2**27", lambda dt=dt: aekernels.max_unpool2d(
                o((1, 1, 2, 2), dt), np.zeros((1, 1, 2, 2), I64), _P)),
            ("max_pool2d_backward input 2**28 x 2**28", lambda one=one: aekernels.max_pool2d_backward(
                one, np.zeros((1, 1, 1, 1), I64), (1, 1, _H, _H))),
            ("avg_pool2d_backward input 2**28 x 2**28", lambda one=one: aekernels.avg_pool2d_backward(
                one, (1, 1, _H, _H), _H)),
            ("conv2d_backward_input input 2**28 x 2**28", lambda one=one: aekernels.conv2d_backward_input(
                one, one, (1, 1, _H, _H), stride=_H)),
        ]]
    return _memory_errors(calls)


CASES["mem_huge_results"] = ("nocrash", mem_huge_results)
