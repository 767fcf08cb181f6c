"""Memory: no leaks over 10,000 calls of every kernel; huge-but-valid sizes -> MemoryError.

RSS is measured after a warm-up (caches, numba dispatch, allocator pools) and must stay
within a few MB over the loop.  The huge cases run in a crash-isolated child.
"""
import gc

import numpy as np
import pytest

import aekernels
import hardening_workloads as W
from hardening_util import SANITIZED, backends, rss_bytes, run_isolated

CALLS = 10_000
WARMUP = 300
SLACK = 4 * 2**20     # bytes of RSS growth tolerated over the loop


@pytest.mark.parametrize("kernel", W.KERNELS)
def test_10000_calls_keep_rss_flat(kernel):
    if SANITIZED:
        pytest.skip("under ASAN, RSS measures the allocator's quarantine of freed blocks, "
                    "not leaks (the sanitizer run checks memory errors instead)")
    before = aekernels.get_num_threads()
    aekernels.set_num_threads(1)
    try:
        for b in backends():
            with aekernels.use_backend(b):
                args, kwargs = W.workload(kernel, n=1, c=2, hw=6)
                # out= where the kernel takes it, alternating with fresh results
                for _ in range(WARMUP):
                    W.call(kernel, args, kwargs)
                gc.collect()
                r0 = rss_bytes()
                for _ in range(CALLS):
                    W.call(kernel, args, kwargs)
                gc.collect()
                grown = rss_bytes() - r0
                assert grown <= SLACK, (f"[{b}] {kernel}: RSS grew {grown / 2**20:.1f} MB over "
                                        f"{CALLS} calls")
    finally:
        aekernels.set_num_threads(before)


def test_huge_but_valid_sizes_raise_memory_error():
    names = [n for n in __import__("hardening_cases").CASES if n.startswith("mem_")]
    assert names
    failures = []
    for b in backends():
        res = run_isolated("hardening_cases", names, env={"AEKERNELS_BACKEND": b})
        for n in names:
            if res[n]["outcome"] != "returned":
                failures.append(f"[{b}] {n}: {res[n]['outcome']}: {res[n].get('detail', '')}")
    assert not failures, "\n".join(failures)
