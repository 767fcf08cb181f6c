"""2x2/stride-2 NCHW max pooling with indices (conv-ae, LeNet-5), aekernels vs PyTorch.

    python bench/pool_2x2.py [--rounds 200] [--threads 1] [--nhwc]

Alternates the implementations call by call and prints the minimum and median times
and the ratio aekernels / torch, then the time of the pooling-index range check that
max_pool2d_backward / max_unpool2d run before their kernels (and of the numpy one-pass
check it replaced), and the max_pool2d_backward / max_unpool2d calls themselves.
A script, not a test: never assert on its times.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import aekernels as ak
from aekernels import _api

SHAPES = [(128, 32, 14, 14), (128, 16, 28, 28), (128, 6, 28, 28), (128, 16, 10, 10)]


def _race(fns: dict, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {key: [] for key in fns}
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return times


def _report(label: str, times: dict[str, list[float]], ref: str | None = "torch") -> None:
    parts = []
    for key, v in times.items():
        parts.append(f"{key} {min(v) * 1e3:7.3f} ms (med {statistics.median(v) * 1e3:7.3f})")
    line = f"{label:34s} " + "  ".join(parts)
    if ref is not None and len(times) == 2:
        ours = next(k for k in times if k != ref)
        line += f"  ratio(min) {min(times[ours]) / min(times[ref]):.2f}"
    print(line, flush=True)


def _numpy_check(idx: np.ndarray, plane: int) -> bool:
    return int(idx.view(np.uint64).max()) < plane


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nhwc", action="store_true", help="also time NHWC pooling")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ak.set_num_threads(args.threads)
    print(f"threads {args.threads}, backend {ak.backend()}, rounds {args.rounds}")
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        x = rng.standard_normal(shape, dtype=np.float32)
        tx = torch.from_numpy(x)
        y, idx = ak.max_pool2d(x, 2, return_indices=True)
        ty, tidx = torch.nn.functional.max_pool2d(tx, 2, return_indices=True)
        assert np.array_equal(y, ty.numpy()) and np.array_equal(idx, tidx.numpy())
        _report(f"max_pool2d+idx {shape}", _race({
            "aek": lambda: ak.max_pool2d(x, 2, return_indices=True),
            "torch": lambda: torch.nn.functional.max_pool2d(tx, 2, return_indices=True),
        }, args.rounds))
        plane = shape[2] * shape[3]
        _report(f"  index check {idx.shape}", _race({
            "aek": lambda: _api._check_indices(idx, plane),
            "numpy": lambda: _numpy_check(idx, plane),
        }, args.rounds), ref="numpy")
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        tgy = torch.from_numpy(gy)
        _report("  max_pool2d_backward", _race({
            "aek": lambda: ak.max_pool2d_backward(gy, idx, shape),
            "torch": lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                tgy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, tidx),
        }, args.rounds))
        _report("  max_unpool2d", _race({
            "aek": lambda: ak.max_unpool2d(y, idx, 2),
            "torch": lambda: torch.nn.functional.max_unpool2d(ty, tidx, 2),
        }, args.rounds))
        if args.nhwc:
            xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
            txl = tx.contiguous(memory_format=torch.channels_last)
            _report(f"  NHWC max_pool2d+idx", _race({
                "aek": lambda: ak.max_pool2d(xl, 2, return_indices=True, layout="NHWC"),
                "torch": lambda: torch.nn.functional.max_pool2d(txl, 2, return_indices=True),
            }, args.rounds))


if __name__ == "__main__":
    main()
