"""Large-channel 3x3 forward convs, aekernels vs PyTorch, with nothing else in the rounds.

    python bench/forward_alone.py [--rounds 30] [--threads 2]

`aekernels bench` times a NumPy GEMM (the issue's ceiling) in the same rounds as the
resnet3x3/vgg3x3 forward convs; OpenBLAS's spinning threads then take cores from both
OpenMP teams and distort those two rows.  This script alternates only the two convs.
A script, not a test: never assert on its times.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import aekernels as ak

SHAPES = {"resnet3x3": (8, 64, 56, 64), "vgg3x3": (4, 128, 28, 128), "ae_enc2": (128, 32, 14, 64)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ak.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    for name, (n, c, hw, k) in SHAPES.items():
        x = rng.random((n, c, hw, hw), dtype=np.float32)
        w = rng.random((k, c, 3, 3), dtype=np.float32)
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        fns = {"aekernels": lambda: ak.conv2d(x, w, padding=1),
               "torch": lambda: torch.nn.functional.conv2d(tx, tw, padding=1)}
        times: dict[str, list[float]] = {key: [] for key in fns}
        for fn in fns.values():
            fn()
        for _ in range(args.rounds):
            for key, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
        med = {key: statistics.median(v) * 1e3 for key, v in times.items()}
        print(f"{name:10s} aekernels {med['aekernels']:7.3f} ms  torch {med['torch']:7.3f} ms  "
              f"ratio {med['aekernels'] / med['torch']:.2f} "
              f"(min/min {min(times['aekernels']) / min(times['torch']):.2f})")


if __name__ == "__main__":
    main()
