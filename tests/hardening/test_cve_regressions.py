"""Regression tests named after the CVE classes of TESTING.md, plus defence in depth.

tests/test_bad_input.py has the API-level bad-input tests (same class names, in
process).  These add, per class: the raw backend kernels called directly with
inconsistent shapes, more extreme values (2**63, NHWC, huge pooling padding), both
backends, and crash isolation; test names carry the CVE id to keep them distinct.

Every crash-prone call runs in a child process (hardening_util.run_isolated), so a
segfault, SIGFPE or sanitizer abort fails the named test instead of killing pytest.
The children inherit the suite's NUMBA_BOUNDSCHECK (tests/conftest.py), so they reuse
the suite's compiled numba kernels; the fuzzer (.ci/fuzz.py) runs numba as users do,
with NUMBA_BOUNDSCHECK=0, where an unchecked out-of-bounds access is silent.

* ``api_*`` cases (tests/hardening/hardening_cases.py): the public API with the bad
  inputs of each class -> ValueError/TypeError (MemoryError where stated);
* ``raw_*`` cases: the backend kernels themselves (``aekernels._dispatch.kernels()``)
  called with shapes/indices/parameters inconsistent with each other, bypassing
  ``_api``: "error" cases must raise ValueError/TypeError, "nocrash" cases may also
  compute something, but must not crash or touch memory out of bounds (the sanitizer
  run turns an out-of-bounds access into a crash).
"""
import numpy as np
import pytest

import aekernels
import hardening_cases as C
import helpers as H
import reference as R
from hardening_util import backends, run_isolated


@pytest.fixture(scope="module")
def outcomes():
    """{backend: {case: record}} for every case, run in crash-isolated children."""
    return {b: run_isolated("hardening_cases", list(C.CASES), env={"AEKERNELS_BACKEND": b})
            for b in backends()}


def _check(outcomes, names):
    failures = []
    for b, res in outcomes.items():
        for n in names:
            expect = C.CASES[n][0]
            rec = res[n]
            if not C.outcome_ok(expect, rec["outcome"]):
                failures.append(f"[{b}] {n}: expected {expect}, got {rec['outcome']}: "
                                f"{rec.get('detail', '')}")
    assert not failures, "\n".join(failures)


def _raw(prefix):
    return [n for n in C.RAW_CASES if n.startswith(prefix)]


def test_cve_2021_29579_max_pool_backward_rejects_indices_outside_plane(outcomes):
    """TF CVE-2021-29579: MaxPoolGrad wrote through an unchecked argmax."""
    _check(outcomes, ["api_max_pool_backward_indices_outside_plane"] + _raw("raw_max_pool_backward"))


def test_cve_2021_29540_conv_backward_filter_rejects_inconsistent_filter_sizes(outcomes):
    """TF CVE-2021-29540: Conv2DBackpropFilter heap overflow from unchecked filter sizes."""
    _check(outcomes, ["api_conv_backward_filter_inconsistent_filter_sizes"]
           + _raw("raw_conv_backward_filter"))


def test_cve_2021_29525_conv_backward_input_rejects_empty_filter(outcomes):
    """TF CVE-2021-29525: Conv2DBackpropInput divided by zero on an empty filter."""
    _check(outcomes, ["api_conv_backward_input_empty_filter"] + _raw("raw_conv_backward_input"))


def test_cve_2022_21725_avg_pool_backward_rejects_zero_stride(outcomes):
    """TF CVE-2022-21725: AvgPoolGrad with stride 0."""
    _check(outcomes, ["api_avg_pool_backward_zero_stride"] + _raw("raw_avg_pool"))


def test_cve_class_torch_unpool_rejects_out_of_range_indices(outcomes):
    """PyTorch max_unpool2d wrote out of bounds for out-of-range indices."""
    _check(outcomes, ["api_unpool_out_of_range_indices"] + _raw("raw_unpool"))


def test_cve_class_torch_conv_rejects_overflowing_padding(outcomes):
    """PyTorch conv int overflow on huge padding (sizes near 2**31, 2**55, 2**63)."""
    _check(outcomes, ["api_conv_overflowing_padding", "raw_conv_forward_huge_padding",
                      "raw_conv_backward_input_huge_padding",
                      "raw_conv_forward_huge_stride_dilation"])


def test_cve_class_torch_conv_rejects_negative_dilation(outcomes):
    """PyTorch: a negative dilation slipped past a check."""
    _check(outcomes, ["api_conv_negative_dilation", "raw_conv_forward_negative_dilation",
                      "raw_conv_forward_negative_padding"])


def test_cve_class_division_by_zero_stride_kernel_scale_groups_rejected(outcomes):
    """Division-by-zero class: stride/kernel/scale 0, groups 0 or not dividing."""
    _check(outcomes, ["api_zero_or_negative_stride_kernel_scale_groups",
                      "raw_conv_forward_groups_zero", "raw_conv_backward_input_groups_zero",
                      "raw_conv_backward_filter_groups_zero", "raw_conv_forward_stride_zero",
                      "raw_conv_backward_input_stride_zero", "raw_upsample_forward_zero_scale",
                      "raw_upsample_backward_zero_scale", "raw_max_pool_forward_zero_kernel"])


@pytest.mark.parametrize("name", C.RAW_CASES)
def test_raw_backend_kernel_never_crashes_on_inconsistent_arguments(outcomes, name):
    """Defence in depth, one case at a time (see the module docstring)."""
    _check(outcomes, [name])


# ----------------------------------------------------------- findings of the hardening work


def test_pool_huge_padding_is_refused_without_huge_allocation(outcomes):
    """Finding F3 (fixed): max/avg pooling with padding 2**29..2**31-1 must be a quick ValueError."""
    _check(outcomes, ["api_pool_huge_padding_refused_cheaply"])


@pytest.mark.parametrize("kernel", ["conv2d", "conv2d_backward_input", "conv2d_backward_filter"])
def test_conv_window_entirely_in_padding_is_valid_on_every_backend(kernel):
    """Finding F1 (fixed in 9bad0e4): padding > dilation*(k-1) puts whole windows in the
    bottom/right padding;
    that is valid (PyTorch agrees) and must give the reference result on every backend."""
    x = H.randn((1, 2, 2, 3), 1)
    w = H.randn((3, 2, 1, 2), 2)
    args = dict(stride=(2, 1), padding=((1, 3), (2, 2)), dilation=1)
    y = R.conv2d(x, w, None, **args)
    gy = H.randn(y.shape, 3)
    for b in backends():
        with aekernels.use_backend(b):
            if kernel == "conv2d":
                got, ref = aekernels.conv2d(x, w, **args), y
            elif kernel == "conv2d_backward_input":
                got = aekernels.conv2d_backward_input(gy, w, x.shape, **args)
                ref = R.conv2d_backward_input(gy, w, x.shape, **args)
            else:
                got = aekernels.conv2d_backward_filter(x, gy, w.shape, **args)
                ref = R.conv2d_backward_filter(x, gy, w.shape, **args)
        H.assert_close(got, ref, np.float64, what=f"[{b}] {kernel}")


def test_full_nhwc_output_size_is_read_in_layout_order():
    """Finding F2 (fixed in 2d0c871): output_size given as a full NHWC shape (N, H, W, C)
    means (H, W)."""
    x = np.ones((1, 4, 5, 2), np.float32)
    w = np.ones((3, 3, 3, 2), np.float32)            # HWIO of the forward conv 3 -> 2
    y = aekernels.conv_transpose2d(x, w, stride=2, layout="NHWC")
    assert y.shape == (1, 9, 11, 3)
    for size in (y.shape, y.shape[1:], (10, 12)):
        want = (1, 10, 12, 3) if size == (10, 12) else y.shape
        got = aekernels.conv_transpose2d(x, w, stride=2, layout="NHWC", output_size=size)
        assert got.shape == want, (size, got.shape)
    p = np.ones((1, 4, 5, 2), np.float32)
    i = np.zeros((1, 4, 5, 2), np.int64)
    u = aekernels.max_unpool2d(p, i, 2, layout="NHWC")
    assert u.shape == (1, 8, 10, 2)
    for size in (u.shape, u.shape[1:], (9, 11)):
        want = (1, 9, 11, 2) if size == (9, 11) else u.shape
        assert aekernels.max_unpool2d(p, i, 2, layout="NHWC", output_size=size).shape == want


@pytest.mark.parametrize("k, stride", [(1, 3), (2, 3), (1, 2), (3, 2), (4, 2)])
def test_conv_transpose_same_padding_output_is_h_times_stride(k, stride):
    """Finding F5 (fixed in 8c23d7c): padding="same" without output_size gives H*stride (TF conv2d_transpose
    SAME; the _api docstring), also when the dilated kernel is smaller than the stride."""
    x = H.randn((1, 2, 5, 4), 7)
    w = H.randn((2, 3, k, k), 8)
    for b in backends():
        with aekernels.use_backend(b):
            y = aekernels.conv_transpose2d(x, w, stride=stride, padding="same")
        assert y.shape == (1, 3, 5 * stride, 4 * stride), f"[{b}] {y.shape}"
        H.assert_close(y, R.conv_transpose2d(x, w, stride=stride, padding="same"), np.float64,
                       what=f"[{b}] conv_transpose2d same")
