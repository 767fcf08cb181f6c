"""Which backends the tests run on (imported by conftest.py and tests; not a conftest,
so that tests/hardening/conftest.py cannot shadow it)."""
import os

import pytest

import aekernels

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
