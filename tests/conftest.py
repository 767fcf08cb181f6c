"""Shared fixtures: backend (native/numba), dtype (float32/float64), layout (NCHW/NHWC).

NUMBA_BOUNDSCHECK must be set before numba is first imported, so it is set here, at the
top of the first module pytest imports, before ``import aekernels``.
"""
import os
import sys

os.environ.setdefault("NUMBA_BOUNDSCHECK", "1")

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:          # reference.py, helpers.py, isolation.py
    sys.path.insert(0, TESTS_DIR)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import aekernels  # noqa: E402

BACKENDS = ("native", "numba")


def native_required() -> bool:
    """CI sets AEKERNELS_REQUIRE_NATIVE=1: a missing native backend is then a failure."""
    return os.environ.get("AEKERNELS_REQUIRE_NATIVE", "") == "1"


def ensure_backend(name: str) -> None:
    """Skip (or fail, see native_required) when backend ``name`` cannot be used."""
    if name in aekernels.available_backends():
        return
    try:
        aekernels.use_backend(name)   # raises with the load error in its message
        reason = "not listed by available_backends()"
    except Exception as exc:  # noqa: BLE001 - we only want its message
        reason = f"{type(exc).__name__}: {exc}"
    message = f"backend {name!r} unavailable: {reason}"
    if name == "numba" or native_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test with aekernels.use_backend(<name>) active; yields the name."""
    name = request.param
    ensure_backend(name)
    with aekernels.use_backend(name):
        assert aekernels.backend() == name
        yield name


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(params=["NCHW", "NHWC"])
def layout(request):
    return request.param
