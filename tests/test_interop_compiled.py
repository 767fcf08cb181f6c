"""Compiled consumers: another extension cimports ``aekernels._pool`` (Cython) or includes
the C++ headers from ``aekernels.get_include()`` and calls a kernel.

Each test builds a tiny throwaway extension with setuptools in a temporary directory
(in a subprocess, so a compiler problem cannot take pytest down), imports it and
checks its result against the NumPy API.  Needs a C++ compiler and setuptools; the
Cython test also needs Cython in the test environment and the native
``aekernels._pool`` (a missing native module fails under AEKERNELS_REQUIRE_NATIVE=1,
as in CI).  The C++ extension uses the plain CPython API (no pybind11/NumPy headers).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest

import aekernels

from backends import native_required


def _need_compiler():
    pytest.importorskip("setuptools")
    cc = sysconfig.get_config_var("CC") or "cc"
    if shutil.which(cc.split()[0]) is None and shutil.which("c++") is None:
        pytest.skip("no C/C++ compiler")


def _build(tmp_path, setup_py: str, sources: dict[str, str], module: str):
    """Write the sources, run ``setup.py build_ext --inplace`` and import ``module``."""
    for name, text in sources.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    (tmp_path / "setup.py").write_text(textwrap.dedent(setup_py))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(aekernels.__file__)))] +
        [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    path = next(p for p in tmp_path.iterdir() if p.name.startswith(module + ".") and
                p.suffix in (".so", ".pyd"))
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------
# Cython: cimport aekernels._pool and call the nogil kernels


CYTHON_CONSUMER = """
    # cython: language_level=3, boundscheck=False, wraparound=False
    cimport aekernels._pool as akp
    from libc.stdint cimport int64_t
    import numpy as np


    cdef akp.pool2d_geom_t geometry(Py_ssize_t N, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                    Py_ssize_t k, Py_ssize_t s):
        cdef akp.pool2d_geom_t g
        g.N = N; g.C = C; g.H = H; g.W = W
        g.kh = k; g.kw = k; g.sh = s; g.sw = s; g.dh = 1; g.dw = 1
        g.pt = 0; g.pb = 0; g.pl = 0; g.pr = 0
        g.OH = (H - k) // s + 1; g.OW = (W - k) // s + 1
        return g


    def max_pool(double[:, :, :, ::1] x, Py_ssize_t k, Py_ssize_t s):
        '''k x k / s max pooling of an NCHW float64 array through the C-level kernel.'''
        cdef akp.pool2d_geom_t g = geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], k, s)
        y = np.empty((g.N, g.C, g.OH, g.OW))
        ind = np.empty((g.N, g.C, g.OH, g.OW), np.int64)
        cdef double[:, :, :, ::1] yv = y
        cdef int64_t[:, :, :, ::1] iv = ind
        cdef int rc
        with nogil:
            rc = akp.max_pool2d_forward_c(&x[0, 0, 0, 0], &yv[0, 0, 0, 0], &iv[0, 0, 0, 0],
                                          &g, False, 1)
        if rc != akp.AEK_OK:
            raise ValueError(f"max_pool2d_forward_c returned {rc}")
        return y, ind


    def avg_pool_f32(float[:, :, :, ::1] x, Py_ssize_t k, Py_ssize_t s):
        '''float32 average pooling (the other fused specialisation).'''
        cdef akp.pool2d_geom_t g = geometry(x.shape[0], x.shape[1], x.shape[2], x.shape[3], k, s)
        y = np.empty((g.N, g.C, g.OH, g.OW), np.float32)
        cdef float[:, :, :, ::1] yv = y
        cdef int rc
        with nogil:
            rc = akp.avg_pool2d_forward_c(&x[0, 0, 0, 0], &yv[0, 0, 0, 0], &g, True, 0, False, 2)
        if rc != akp.AEK_OK:
            raise ValueError(f"avg_pool2d_forward_c returned {rc}")
        return y


    def bad_geometry():
        '''A stride of 0 must come back as an error code, not a crash.'''
        cdef double x[16]
        cdef double y[16]
        cdef akp.pool2d_geom_t g = geometry(1, 1, 4, 4, 2, 2)
        g.sh = 0
        return akp.max_pool2d_forward_c(&x[0], &y[0], NULL, &g, False, 1)
"""

CYTHON_SETUP = """
    from setuptools import setup, Extension
    from Cython.Build import cythonize
    setup(name="aek_cython_consumer", ext_modules=cythonize(
        [Extension("aek_cython_consumer", ["aek_cython_consumer.pyx"])], quiet=True))
"""


def test_cython_extension_cimports_pool_kernels(tmp_path):
    _need_compiler()
    pytest.importorskip("Cython")
    try:
        import aekernels._pool  # noqa: F401
    except ImportError as exc:
        if native_required():
            raise
        pytest.skip(f"native aekernels._pool unavailable: {exc}")
    mod = _build(tmp_path, CYTHON_SETUP, {"aek_cython_consumer.pyx": CYTHON_CONSUMER},
                 "aek_cython_consumer")
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * 3 * 9 * 8).reshape(2, 3, 9, 8) / 8.0
    y, ind = mod.max_pool(x, 3, 2)
    y_ref, ind_ref = aekernels.max_pool2d(x, 3, 2, return_indices=True)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(ind, ind_ref)
    x32 = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(mod.avg_pool_f32(x32, 2, 2), aekernels.avg_pool2d(x32, 2),
                               rtol=1e-6, atol=1e-6)
    assert mod.bad_geometry() != 0


# ---------------------------------------------------------------------------------
# C++: #include <aekernels/conv.hpp> from aekernels.get_include()

CPP_CONSUMER = r"""
    // A plain CPython extension (no pybind11/NumPy headers needed) that runs the
    // aekernels C++ conv kernel on caller-owned float32 buffers.
    #define PY_SSIZE_T_CLEAN
    #include <Python.h>

    #include <stdexcept>

    #include <aekernels/conv.hpp>
    #include <aekernels/geometry.hpp>

    #include "aek_runtime.hpp"

    // conv2d_f32(x_ptr, w_ptr, y_ptr, N, C, H, W, K, kh, kw, OH, OW, stride, pad):
    // x (N,C,H,W), w (K,C,kh,kw) -> y (N,K,OH,OW), NCHW, groups 1.
    static PyObject* conv2d_f32(PyObject*, PyObject* args) {
        Py_ssize_t xp, wp, yp, N, C, H, W, K, kh, kw, OH, OW, s, p;
        if (!PyArg_ParseTuple(args, "nnnnnnnnnnnnnn", &xp, &wp, &yp, &N, &C, &H, &W, &K, &kh,
                              &kw, &OH, &OW, &s, &p))
            return nullptr;
        const aek::i64 xs[4] = {N, C, H, W}, ws[4] = {K, C, kh, kw}, ys[4] = {N, K, OH, OW};
        try {
            const aek::ConvGeom g =
                aek::make_conv_geom("conv2d_f32", xs, ws, ys, s, s, p, p, 1, 1, 1, false);
            Py_BEGIN_ALLOW_THREADS
            aek::conv2d_forward<float>(g, reinterpret_cast<const float*>(xp),
                                       reinterpret_cast<const float*>(wp), nullptr,
                                       reinterpret_cast<float*>(yp));
            Py_END_ALLOW_THREADS
        } catch (const std::exception& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
            return nullptr;
        }
        Py_RETURN_NONE;
    }

    static PyObject* isa(PyObject*, PyObject*) {
        return PyUnicode_FromString(aek::isa_table().isa);
    }

    static PyMethodDef methods[] = {
        {"conv2d_f32", conv2d_f32, METH_VARARGS, nullptr},
        {"isa", isa, METH_NOARGS, nullptr},
        {nullptr, nullptr, 0, nullptr}};
    static PyModuleDef module = {PyModuleDef_HEAD_INIT, "aek_cpp_consumer", nullptr, -1, methods};
    PyMODINIT_FUNC PyInit_aek_cpp_consumer() { return PyModule_Create(&module); }
"""

# The conv templates call aek::isa_table() and aek::num_threads(), which the
# aekernels extension defines in csrc/dispatch.cpp (not shipped).  A consumer
# provides them; this one uses the portable generic GEMM micro-kernel from gemm.hpp
# (max_m = 0: never the small-M direct path, so no shift/dot kernels are needed).
CPP_RUNTIME = r"""
    #pragma once
    #include <aekernels/gemm.hpp>

    namespace aek {
    namespace {
    void ukernel_f32_6x8(i64 kc, const float* a, const float* b, float* c, i64 ldc, int acc) {
        gemm_ukernel_generic<float, 6, 8>(kc, a, b, c, ldc, acc);
    }
    void ukernel_f64_6x4(i64 kc, const double* a, const double* b, double* c, i64 ldc, int acc) {
        gemm_ukernel_generic<double, 6, 4>(kc, a, b, c, ldc, acc);
    }
    IsaTable consumer_table() {
        IsaTable t{};
        t.isa = "generic (consumer)";
        t.f32 = {"gemm_ukernel_f32_6x8_generic", 6, 8, 120, 256, 4096, ukernel_f32_6x8};
        t.f64 = {"gemm_ukernel_f64_6x4_generic", 6, 4, 120, 256, 4096, ukernel_f64_6x4};
        t.shift_f32 = {"none", 8, 0, nullptr};
        t.shift_f64 = {"none", 8, 0, nullptr};
        return t;
    }
    }  // namespace
    const IsaTable& isa_table() { static const IsaTable t = consumer_table(); return t; }
    int num_threads() { return 1; }
    void set_num_threads(int) {}
    }  // namespace aek
"""

CPP_SETUP = """
    from setuptools import Extension, setup
    import aekernels
    setup(name="aek_cpp_consumer", ext_modules=[Extension(
        "aek_cpp_consumer", ["aek_cpp_consumer.cpp"], language="c++",
        include_dirs=[aekernels.get_include()], extra_compile_args=["-std=c++17", "-O1"])])
"""


def test_cpp_extension_includes_headers_from_get_include(tmp_path):
    _need_compiler()
    include = aekernels.get_include()
    assert os.path.isfile(os.path.join(include, "aekernels", "conv.hpp")), include
    mod = _build(tmp_path, CPP_SETUP, {"aek_cpp_consumer.cpp": CPP_CONSUMER,
                                       "aek_runtime.hpp": CPP_RUNTIME}, "aek_cpp_consumer")
    assert mod.isa() == "generic (consumer)"
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 11, 10)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    for s, p in [(1, 0), (2, 1), (1, 1)]:
        ref = aekernels.conv2d(x, w, stride=s, padding=p)
        y = np.full(ref.shape, np.nan, np.float32)
        mod.conv2d_f32(x.ctypes.data, w.ctypes.data, y.ctypes.data, *x.shape, w.shape[0],
                       *w.shape[2:], *y.shape[2:], s, p)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        mod.conv2d_f32(x.ctypes.data, w.ctypes.data, y.ctypes.data, *x.shape, w.shape[0],
                       *w.shape[2:], *y.shape[2:], 0, 0)
