"""TESTING.md tools: concurrent Python threads on shared inputs give the serial results
bitwise; repeated calls keep RSS flat."""
import threading

import numpy as np
import pytest

import aekernels
import helpers as H
import reference as R


def _calls(dtype):
    x = H.randn((2, 6, 11, 10), 1, dtype)
    w = H.randn((8, 3, 3, 3), 2, dtype)
    b = H.randn((8,), 3, dtype)
    gy = H.randn((2, 8, 6, 5), 4, dtype)
    px = H.distinct((2, 3, 9, 8), 5, dtype)
    py, pidx = R.max_pool2d(px, 2)
    py = py.astype(dtype)
    return {
        "conv2d": lambda: aekernels.conv2d(x, w, b, stride=2, padding=1, groups=2),
        "conv2d_backward_input": lambda: aekernels.conv2d_backward_input(
            gy, w, x.shape, stride=2, padding=1, groups=2),
        "conv2d_backward_filter": lambda: aekernels.conv2d_backward_filter(
            x, gy, w.shape, stride=2, padding=1, groups=2),
        "conv_transpose2d": lambda: aekernels.conv_transpose2d(gy, w, stride=2, groups=2),
        "max_pool2d": lambda: aekernels.max_pool2d(px, 3, 2, 1, return_indices=True),
        "avg_pool2d_backward": lambda: aekernels.avg_pool2d_backward(
            py, px.shape, 2, count_include_pad=False),
        "max_unpool2d": lambda: aekernels.max_unpool2d(py, pidx, 2, output_size=px.shape[2:]),
        "upsample_nearest2d_backward": lambda: aekernels.upsample_nearest2d_backward(px, (3, 2)),
    }


def _same(a, b, what):
    if isinstance(a, tuple):
        for u, v in zip(a, b):
            _same(u, v, what)
    else:
        np.testing.assert_array_equal(a, b, err_msg=what, strict=True)


def test_threads_give_serial_results_bitwise(backend, dtype):
    calls = _calls(dtype)
    serial = {name: fn() for name, fn in calls.items()}
    errors = []
    results = []

    def worker(seed):
        order = list(calls)
        np.random.default_rng(seed).shuffle(order)
        try:
            for _ in range(3):
                for name in order:
                    results.append((name, calls[name]()))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a kernel call hung under concurrency"
    assert not errors, errors
    assert len(results) == 6 * 3 * len(calls)
    for name, r in results:
        _same(r, serial[name], f"{name} under concurrency differs from the serial result")


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not hasattr(__import__("os"), "sysconf"), reason="needs /proc")
def test_repeated_calls_keep_rss_flat(backend):
    calls = _calls(np.float32)
    for fn in calls.values():          # warm up: JIT, thread pools, allocator
        for _ in range(20):
            fn()
    before = _rss_bytes()
    for _ in range(250):               # 2,000 calls in all
        for fn in calls.values():
            fn()
    growth = _rss_bytes() - before
    assert growth < 32 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 2,000 calls"
