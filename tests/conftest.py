"""Shared fixtures: backend (native/numba), native, dtype (float32/float64), layout (NCHW/NHWC).

NUMBA_BOUNDSCHECK must be set before numba is first imported, so it is set here, at the
top of the first module pytest imports, before ``import aekernels``.
"""
import os
import sys

os.environ.setdefault("NUMBA_BOUNDSCHECK", "1")
if os.environ["NUMBA_BOUNDSCHECK"] == "1":
    # numba's cache index does not record the bounds-check setting: kernels compiled here
    # would be loaded by later ordinary runs from the same cache (the nn layer's ReLU
    # backward ran 17x slower after a test run).  Keep them in a cache of their own.
    import tempfile

    os.environ["NUMBA_CACHE_DIR"] = os.path.join(
        os.environ.get("NUMBA_CACHE_DIR") or tempfile.gettempdir(),
        f"aekernels-numba-boundscheck-{os.getuid() if hasattr(os, 'getuid') else 0}")

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:          # reference.py, helpers.py, isolation.py
    sys.path.insert(0, TESTS_DIR)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import aekernels  # noqa: E402

from backends import BACKENDS, ensure_backend, native_required  # noqa: E402,F401


NUMBA_SEEDS = 3


def pytest_collection_modifyitems(config, items):
    """Run the big parameter grids (cases.py) on numba only for cases.NUMBA_SUBSET, and
    the seeded random cases (test_torch_crosscheck.py) only for the first NUMBA_SEEDS."""
    if os.environ.get("AEKERNELS_FULL_NUMBA_GRID", "") == "1":
        return
    from cases import NUMBA_SUBSET
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        case = params.get("p")
        seed = params.get("seed")
        if params.get("backend") == "numba" and (
                (isinstance(case, dict) and case.get("id") is not None
                 and case["id"] not in NUMBA_SUBSET)
                or (isinstance(seed, int) and seed >= NUMBA_SEEDS)):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test with aekernels.use_backend(<name>) active; yields the name."""
    name = request.param
    ensure_backend(name)
    with aekernels.use_backend(name):
        assert aekernels.backend() == name
        yield name


@pytest.fixture
def native():
    """The native backend active; thread count and conv algorithm restored afterwards."""
    ensure_backend("native")
    before = aekernels.get_num_threads(), aekernels.get_conv_algorithm()
    try:
        with aekernels.use_backend("native"):
            yield
    finally:
        aekernels.set_num_threads(before[0])
        aekernels.set_conv_algorithm(before[1])


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture(params=["NCHW", "NHWC"])
def layout(request):
    return request.param
