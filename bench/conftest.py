"""pytest-benchmark suite: ``pytest bench/ --benchmark-only``.

The cases (DESIGN.md shapes x kernels x layouts x dtypes) are defined once, in
``aekernels.bench``; ``aekernels bench`` runs the same ones in one process and prints
the ratio table.  Every case is run on the native and numba backends and, when it is
installed, PyTorch (NHWC as channels_last), all at one thread count:
AEKERNELS_BENCH_THREADS, else all cores.  Benchmarks are grouped by kernel and shape, so
pytest-benchmark prints native, numba and torch of one shape side by side; extra_info
holds GF/s (conv: 2 * output elements * C_in * kh * kw / median time) or GB/s
(pooling: bytes read + written / median time).

Select with -k, e.g. ``pytest bench/ --benchmark-only -k "resnet3x3 and NCHW and float32"``.
"""
from __future__ import annotations

import os

import pytest

import aekernels
from aekernels import bench as akbench

try:
    import torch
except ImportError:  # PyTorch is optional: its benchmarks are skipped
    torch = None

THREADS = int(os.environ.get("AEKERNELS_BENCH_THREADS", "0") or 0) or akbench._default_threads()
IMPLS = akbench.IMPLEMENTATIONS


@pytest.fixture(scope="session", autouse=True)
def _same_threads():
    aekernels.set_num_threads(THREADS)
    if torch is not None:
        torch.set_num_threads(THREADS)
    yield


_cache: dict[str, akbench.Prepared] = {}


def _prepared(case: akbench.Case) -> akbench.Prepared:
    """Inputs of the case last asked for (the three implementations share them)."""
    if case.id not in _cache:
        _cache.clear()
        _cache[case.id] = akbench.prepare(case, torch)
    return _cache[case.id]


@pytest.fixture
def run_case(benchmark):
    """run_case(case, impl): benchmark one implementation of one case."""

    def run(case: akbench.Case, impl: str) -> None:
        if impl == "torch":
            if torch is None:
                pytest.skip("PyTorch is not installed")
            fn = _prepared(case).torch
        else:
            if impl not in aekernels.available_backends():
                pytest.skip(f"backend {impl!r} unavailable")
            fn = aekernels.use_backend(impl)(_prepared(case).aek)
        prep = _prepared(case)
        benchmark.group = f"{case.kernel} {case.shape}"
        benchmark.extra_info.update(
            impl=impl, layout=case.layout, dtype=case.dtype, shape=prep.case.spec.describe(),
            threads=THREADS, unit=prep.unit,
            isa=aekernels._dispatch.isa() if impl == "native" else None)
        fn()  # warm-up outside the timing: numba compiles, oneDNN builds its primitives
        benchmark(fn)
        stats = getattr(benchmark, "stats", None)
        if stats is not None:  # None under --benchmark-disable
            key = "gflops" if prep.unit == "GF/s" else "gbps"
            benchmark.extra_info[key] = round(prep.rate(stats.stats.median), 3)

    return run
