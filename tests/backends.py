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


def package_parent() -> str:
    """Directory holding the aekernels package this process imported (site-packages
    when the package is installed, the repository root for an in-place build)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(aekernels.__file__)))


def child_env(env: dict | None = None) -> dict:
    """Environment for a child interpreter that must import the same aekernels.

    Run the child with ``cwd=package_parent()`` too: ``python -c`` puts the working
    directory first on sys.path, and from the repository root that would be the
    uncompiled source tree instead of the installed package.
    """
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(
        [package_parent()] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env
