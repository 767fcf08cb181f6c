"""Backend selection and runtime control: backend(), available_backends(), use_backend,
AEKERNELS_BACKEND, set/get_num_threads, show_config, get_include, __version__."""
import io
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import aekernels
from backends import BACKENDS, child_env, ensure_backend, native_required, package_parent



def _python(code, **env_overrides):
    """Run ``code`` in a fresh interpreter with the repo importable; -> CompletedProcess."""
    env = child_env()
    env.pop("AEKERNELS_BACKEND", None)
    env.update(env_overrides)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, cwd=package_parent())


def test_backend_is_a_known_available_name():
    assert aekernels.backend() in BACKENDS
    assert aekernels.backend() in aekernels.available_backends()


def test_available_backends_is_a_tuple_subset():
    avail = aekernels.available_backends()
    assert isinstance(avail, tuple)
    assert set(avail) <= set(BACKENDS)
    assert "numba" in avail, "numba is a hard dependency and must always load"
    if native_required():
        assert "native" in avail, "AEKERNELS_REQUIRE_NATIVE=1 but native did not load"
    assert list(avail) == [b for b in BACKENDS if b in avail], "fastest first"


def test_default_backend_is_native_when_it_loads():
    code = "import aekernels; print(aekernels.backend()); print(aekernels.available_backends())"
    r = _python(code)
    assert r.returncode == 0, r.stderr
    chosen, avail = r.stdout.splitlines()[-2:]
    if "native" in avail:
        assert chosen == "native"
    else:
        assert chosen == "numba"
        assert "native" in r.stderr and "Warning" in r.stderr, \
            "falling back to numba must warn and say why"


@pytest.mark.parametrize("name", BACKENDS)
def test_use_backend_as_context_manager(name):
    ensure_backend(name)
    before = aekernels.backend()
    with aekernels.use_backend(name) as ctx:
        assert aekernels.backend() == name
        assert ctx is not None
    assert aekernels.backend() == before


@pytest.mark.parametrize("name", BACKENDS)
def test_use_backend_as_plain_call(name):
    ensure_backend(name)
    before = aekernels.backend()
    try:
        aekernels.use_backend(name)
        assert aekernels.backend() == name
        x = np.ones((1, 1, 4, 4))
        np.testing.assert_array_equal(aekernels.max_pool2d(x, 2), np.ones((1, 1, 2, 2)))
    finally:
        aekernels.use_backend(before)
    assert aekernels.backend() == before


def test_use_backend_nests_and_restores_on_error():
    avail = aekernels.available_backends()
    before = aekernels.backend()
    first, second = avail[0], avail[-1]
    with pytest.raises(KeyError):
        with aekernels.use_backend(first):
            with aekernels.use_backend(second):
                assert aekernels.backend() == second
            assert aekernels.backend() == first
            raise KeyError("boom")
    assert aekernels.backend() == before


@pytest.mark.parametrize("bad", ["cuda", "", "NATIVE ", None, 3])
def test_use_backend_rejects_unknown_names(bad):
    before = aekernels.backend()
    with pytest.raises((ValueError, TypeError), match="backend"):
        aekernels.use_backend(bad)
    assert aekernels.backend() == before


@pytest.mark.parametrize("name", BACKENDS)
def test_env_var_selects_backend_at_import(name):
    ensure_backend(name)
    code = "import aekernels; print(aekernels.backend()); aekernels.show_config()"
    r = _python(code, AEKERNELS_BACKEND=name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == name
    assert re.search(rf"backend\s+{name}", r.stdout), r.stdout


def test_env_var_with_unknown_backend_fails_loudly():
    r = _python("import aekernels; print(aekernels.backend())", AEKERNELS_BACKEND="bogus")
    assert r.returncode != 0 or "bogus" in r.stderr, \
        "an unknown AEKERNELS_BACKEND must not be ignored silently"
    assert "bogus" in r.stderr


def test_import_falls_back_to_numba_with_a_warning_when_native_is_broken():
    code = ("import sys, warnings\n"
            "sys.modules['aekernels._native'] = None  # import of _native now fails\n"
            "warnings.simplefilter('always')\n"
            "import aekernels\n"
            "print(aekernels.backend())\n"
            "print(aekernels.available_backends())\n")
    r = _python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "numba"
    assert "native" not in r.stdout.splitlines()[1]
    warning_lines = [ln for ln in r.stderr.splitlines() if "Warning" in ln]
    assert warning_lines, f"no warning on fallback; stderr: {r.stderr!r}"
    assert "_native" in r.stderr or "native" in warning_lines[0]


@pytest.mark.parametrize("name", BACKENDS)
def test_set_get_num_threads(name):
    ensure_backend(name)
    with aekernels.use_backend(name):
        before = aekernels.get_num_threads()
        assert isinstance(before, int) and before >= 1
        try:
            aekernels.set_num_threads(1)
            assert aekernels.get_num_threads() == 1
            x = np.arange(64.0).reshape(1, 1, 8, 8)
            y1 = aekernels.avg_pool2d(x, 2)
            aekernels.set_num_threads(2)
            assert aekernels.get_num_threads() == 2
            np.testing.assert_array_equal(aekernels.avg_pool2d(x, 2), y1)
        finally:
            aekernels.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_set_num_threads_rejects_bad_values(bad):
    before = aekernels.get_num_threads()
    with pytest.raises((ValueError, TypeError)):
        aekernels.set_num_threads(bad)
    assert aekernels.get_num_threads() == before


def test_show_config_mentions_backend_isa_and_threads(capsys):
    aekernels.show_config()
    text = capsys.readouterr().out
    assert aekernels.__version__ in text
    assert re.search(rf"backend\s+{aekernels.backend()}", text), text
    assert "numba" in text and "numpy" in text
    assert re.search(r"\b(avx512|avx2|generic|n/a)", text), text
    assert re.search(rf"threads\s+{aekernels.get_num_threads()}", text), text


@pytest.mark.parametrize("name", BACKENDS)
def test_show_config_reports_active_backend(name):
    ensure_backend(name)
    buf = io.StringIO()
    with aekernels.use_backend(name):
        aekernels.show_config(file=buf)
    assert re.search(rf"backend\s+{name}", buf.getvalue()), buf.getvalue()


def test_get_include_is_a_directory_with_headers():
    inc = aekernels.get_include()
    assert isinstance(inc, str) and os.path.isdir(inc), inc
    headers = [f for _, _, files in os.walk(inc) for f in files if f.endswith((".h", ".hpp"))]
    assert headers, f"no C++ headers under {inc}"


def test_version():
    v = aekernels.__version__
    assert isinstance(v, str) and re.match(r"^\d+\.\d+(\.\d+)?", v), v


def test_public_api_is_complete():
    for name in ["conv2d", "conv2d_backward_input", "conv2d_backward_filter",
                 "conv2d_backward_bias", "conv_transpose2d", "max_pool2d",
                 "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "max_unpool2d",
                 "max_unpool2d_backward", "upsample_nearest2d", "upsample_nearest2d_backward",
                 "backend", "available_backends", "use_backend", "set_num_threads",
                 "get_num_threads", "show_config", "get_include", "__version__"]:
        assert hasattr(aekernels, name), name


def test_use_backend_is_thread_safe_enough_for_kernels():
    """Kernels called from several threads under one backend give the serial results."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 12, 11))
    w = rng.standard_normal((6, 4, 3, 3))
    serial = aekernels.conv2d(x, w, padding=1)
    results = [None] * 6

    def work(i):
        results[i] = aekernels.conv2d(x, w, padding=1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, serial, strict=True)
