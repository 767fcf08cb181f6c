"""Hypothesis property tests over every kernel, on every available backend.

* valid random parameters: the result has the shape the formula gives, its values
  match tests/reference.py (TESTING.md tolerances; max pooling/unpooling bitwise), and
  a preallocated ``out=`` (filled with NaN) is returned and fully overwritten;
* invalid random parameters (one argument of a valid call corrupted: 0, negatives,
  values >= 2**31 up to 2**64, wrong types, dtypes, ranks, channels, out-of-plane
  indices, inconsistent backward shapes, bad ``out=``): ValueError or TypeError with a
  message, nothing written to ``out``.

Default: a fixed seed and a few dozen examples per kernel; ``--fuzz`` many more.
Crashes here would kill pytest: the sanitizer run (.ci/sanitize.sh) and the fuzz
harness (.ci/fuzz.py, crash-isolating) are where memory errors surface as reports.
"""
import numpy as np
import pytest
from hypothesis import assume, given, note, strategies as st

import aekernels
import hardening_problems as P
from hardening_util import backends, hsettings


@pytest.mark.parametrize("kernel", P.KERNELS)
def test_valid_random_parameters_match_reference(kernel):
    @hsettings(25)
    @given(st.data())
    def check(data):
        src = P.Src(data=data)
        try:
            call = P.valid_call(kernel, src)
        except P.Reject:
            assume(False)
        note(call.describe())
        use_out = kernel in P.HAS_OUT and src.bool()
        for name in backends():
            c = call.copy()
            if use_out:
                c.kwargs["out"] = np.full(call.shape, np.nan, call.dtype)
            with aekernels.use_backend(name):
                result = c.run(aekernels)
            if use_out:
                values = result[0] if kernel == "max_pool2d" else result
                assert values.shape == c.kwargs["out"].shape
                if values.size:
                    assert np.shares_memory(values, c.kwargs["out"]), "out= not used"
            try:
                P.check_result(call, result)
            except AssertionError as exc:
                raise AssertionError(f"[{name}] {call.describe()}: {exc}") from None
    check()


@pytest.mark.parametrize("kernel", P.KERNELS)
def test_invalid_random_parameters_raise(kernel):
    @hsettings(40)
    @given(st.data())
    def check(data):
        src = P.Src(data=data)
        try:
            call = P.invalid_call(kernel, src)
        except P.Reject:
            assume(False)
        note(call.describe())
        for name in backends():
            with aekernels.use_backend(name):
                P.assert_refused(call.copy(), aekernels)
    check()
