"""Thread control for the numba backend.

numba's thread count is per calling thread, so the count requested through
``set_num_threads`` is remembered here and re-applied (cheaply) by every kernel
wrapper in whichever Python thread calls it.

The conv kernels call the BLAS (SciPy's OpenBLAS, which numba's ``np.dot`` links)
from inside their own parallel region, one GEMM per task, so while a conv kernel
runs that BLAS is pinned to one thread (``run_gemm``; reference-counted across
concurrent callers and restored afterwards).  Its thread count is otherwise left
alone.  If that library cannot be found the GEMMs still work, possibly with more
threads than requested.

The ``workqueue`` threading layer (used when neither OpenMP nor TBB is available) is
not safe for concurrent launches from several Python threads; under it the wrappers
serialise kernel calls with a lock.
"""
from __future__ import annotations

import threading

import numba

from .._blas import openblas_thread_api

_requested: int | None = None
_blas_setter = None
_blas_getter = None
_blas_searched = False
_pin_lock = threading.Lock()
_pin_count = 0
_pin_saved = 0
_layer: str | None = None
_lock = threading.Lock()


def _max_threads() -> int:
    return int(numba.config.NUMBA_NUM_THREADS)


def _find_blas_setter():
    """``openblas_set_num_threads`` of the BLAS behind numba's np.dot, or None."""
    global _blas_setter, _blas_getter, _blas_searched
    if _blas_searched:
        return _blas_setter
    _blas_searched = True
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the library numba calls)
        import scipy

        api = openblas_thread_api(scipy)
    except Exception:  # no SciPy OpenBLAS found: leave the BLAS at its own default
        api = ()
    if api:
        _blas_setter, _blas_getter = api
    return _blas_setter


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (clamped to [1, NUMBA_NUM_THREADS]) in the numba kernels."""
    global _requested
    n = max(1, min(int(n), _max_threads()))
    _requested = n
    numba.set_num_threads(n)


def get_num_threads() -> int:
    """Threads the numba kernels use (the requested count, else numba's)."""
    if _requested is not None:
        return _requested
    return int(numba.get_num_threads())


def _threading_layer() -> str | None:
    global _layer
    if _layer is None:
        try:
            _layer = numba.threading_layer()
        except ValueError:  # not chosen before the first parallel launch
            return None
    return _layer


def _apply_threads() -> int:
    """Apply the requested count in the calling thread; return the count in force."""
    n = int(numba.get_num_threads())
    if _requested is not None and n != _requested:
        numba.set_num_threads(_requested)
        n = _requested
    return n


def run(kernel, *args) -> None:
    """Call a parallel njit kernel with the requested thread count applied."""
    _apply_threads()
    layer = _threading_layer()
    if layer is None or layer == "workqueue":
        with _lock:
            kernel(*args)
    else:
        kernel(*args)


def _pin_blas() -> None:
    global _pin_count, _pin_saved
    if _find_blas_setter() is None:
        return
    with _pin_lock:
        if _pin_count == 0:
            _pin_saved = int(_blas_getter())
            if _pin_saved != 1:
                _blas_setter(1)
        _pin_count += 1


def _unpin_blas() -> None:
    global _pin_count
    if _blas_setter is None:
        return
    with _pin_lock:
        _pin_count -= 1
        if _pin_count == 0 and _pin_saved != 1:
            _blas_setter(_pin_saved)


def run_gemm(kernel, *args) -> None:
    """``run`` for the conv kernels: they take the thread count as a last argument
    and call the BLAS inside their parallel region (pinned to one thread meanwhile)."""
    _pin_blas()
    try:
        run(kernel, *args, _apply_threads())
    finally:
        _unpin_blas()
