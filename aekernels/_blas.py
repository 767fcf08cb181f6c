"""Keep NumPy's OpenBLAS on one thread while the kernels' OpenMP team works.

Two thread pools that both spin-wait on the same cores (OpenBLAS's pthreads and the
kernels' OpenMP team) hand the CPU back and forth in scheduler time slices.  Training
LeNet-5 on 2 cores took 0.91 s/epoch with OpenBLAS at 2 threads and 0.23 s with it at
1 (Xeon, AVX-512, 2026-11-25); the small GEMMs of dense layers lose nothing.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_saved = 1
_api: tuple | None = None  # (set, get) of numpy's OpenBLAS, () if not found


# How OpenBLAS builds export openblas_{set,get}_num_threads: the scipy-openblas wheels
# (ILP64 with the 64_ suffix, as in NumPy; LP64 without, as in SciPy) and plain OpenBLAS.
_THREAD_API_NAMES = (("scipy_openblas_", "64_"), ("scipy_openblas_", ""), ("openblas_", ""))


def openblas_thread_api(package) -> tuple:
    """``(set_num_threads, get_num_threads)`` of the OpenBLAS that the wheel of the
    imported module ``package`` (numpy, scipy) bundles in ``<name>.libs`` beside it, or ().
    The package must be loaded first: ctypes then hands back the very library it calls."""
    libdir = os.path.join(os.path.dirname(os.path.dirname(package.__file__)),
                          package.__name__ + ".libs")
    for path in sorted(glob.glob(os.path.join(libdir, "*openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in _THREAD_API_NAMES:
            set_ = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
            get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
            if set_ is not None and get is not None:
                set_.argtypes, set_.restype = [ctypes.c_int], None
                get.argtypes, get.restype = [], ctypes.c_int
                return (set_, get)
    return ()


def _numpy_openblas() -> tuple:
    """``(set_num_threads, get_num_threads)`` of the OpenBLAS bundled with NumPy, or ()."""
    global _api
    if _api is None:
        import numpy

        _api = openblas_thread_api(numpy)
    return _api


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """Within the block (re-entrant, thread-safe), NumPy's OpenBLAS uses one thread."""
    global _depth, _saved
    api = _numpy_openblas()
    if not api:
        yield
        return
    set_, get = api
    with _lock:
        if _depth == 0:
            _saved = int(get())
            if _saved != 1:
                set_(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved != 1:
                set_(_saved)
