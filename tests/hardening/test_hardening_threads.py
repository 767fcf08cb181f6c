"""Thread safety and GIL release.

* 8 Python threads call each kernel concurrently on the *same* input arrays: every
  result is bitwise equal to the serial result (both backends).
* The GIL is released inside the native kernels: a pure-Python counter thread keeps
  ticking while a long kernel runs.
"""
import threading
import time

import numpy as np
import pytest

import aekernels
import hardening_workloads as W
from hardening_util import SANITIZED, backends

N_THREADS = 8
CALLS_PER_THREAD = 2


@pytest.fixture
def two_threads():
    before = aekernels.get_num_threads()
    aekernels.set_num_threads(2)
    yield
    aekernels.set_num_threads(before)


@pytest.mark.parametrize("kernel", W.KERNELS)
def test_concurrent_calls_on_shared_inputs_equal_serial(kernel, two_threads):
    for b in backends():
        with aekernels.use_backend(b):
            args, kwargs = W.workload(kernel, n=2, c=4, hw=12)
            snapshot = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            serial = W.as_tuple(W.call(kernel, args, kwargs))
            results, errors = [], []
            barrier = threading.Barrier(N_THREADS)

            def worker():
                try:
                    barrier.wait()
                    for _ in range(CALLS_PER_THREAD):
                        results.append(W.as_tuple(W.call(kernel, args, kwargs)))
                except BaseException as exc:  # reported below
                    errors.append(exc)
            # use_backend is process-wide: the worker threads see this backend too
            threads = [threading.Thread(target=worker) for _ in range(N_THREADS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert not errors, f"[{b}] {kernel}: {errors[0]!r}"
        assert len(results) == N_THREADS * CALLS_PER_THREAD
        for r in results:
            for got, want in zip(r, serial):
                np.testing.assert_array_equal(got, want, strict=True,
                                              err_msg=f"[{b}] {kernel} concurrent != serial")
        for a, s in zip(args, snapshot):   # shared inputs are never written
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, s, strict=True)


# --------------------------------------------------------------------------- GIL release

_GIL_KERNELS = {   # kernel -> workload keyword arguments that make it compute-heavy
    "conv2d": dict(c=16, hw=32, k=5),
    "conv2d_backward_input": dict(c=16, hw=32, k=5),
    "conv2d_backward_filter": dict(c=16, hw=32, k=5),
    "conv_transpose2d": dict(c=16, hw=32, k=5),
    "max_pool2d": dict(c=16, hw=64, k=9),
    "avg_pool2d": dict(c=16, hw=64, k=9),
    "avg_pool2d_backward": dict(c=16, hw=64, k=9),
}


def _long_call(kernel, target):
    """Grow the batch until one call takes >= ``target`` seconds (or inputs reach ~64 MB)."""
    n = 1
    while True:
        args, kwargs = W.workload(kernel, n=n, **_GIL_KERNELS[kernel])
        t = time.perf_counter()
        W.call(kernel, args, kwargs)
        dt = time.perf_counter() - t
        if dt >= target or args[0].nbytes * 2 > 64 * 2**20:
            return args, kwargs, dt
        n *= 2 if dt > target / 8 else 4


@pytest.mark.parametrize("kernel", sorted(_GIL_KERNELS))
def test_native_kernel_releases_the_gil(kernel):
    if "native" not in backends():
        pytest.skip("native backend unavailable")
    before = aekernels.get_num_threads()
    aekernels.set_num_threads(1)       # leave a core for the counter thread
    try:
        with aekernels.use_backend("native"):
            args, kwargs, dt = _long_call(kernel, 0.3)
            if dt < 0.05:
                pytest.skip(f"{kernel}: a call takes only {dt:.3f} s here; too short to observe")
            ticks, stop = [], threading.Event()

            def counter():
                i = 0
                while not stop.is_set():
                    i += 1
                    if i % 256 == 0:
                        ticks.append(time.perf_counter())
            th = threading.Thread(target=counter)
            th.start()
            time.sleep(0.02)
            t0 = time.perf_counter()
            W.call(kernel, args, kwargs)
            t1 = time.perf_counter()
            stop.set()
            th.join()
    finally:
        aekernels.set_num_threads(before)
    margin = 0.2 * (t1 - t0)
    inside = sum(1 for t in ticks if t0 + margin < t < t1 - margin)
    assert inside >= 3, (f"{kernel}: the Python counter thread ticked {inside} times during "
                         f"the middle 60% of a {t1 - t0:.2f} s native call: GIL not released")
