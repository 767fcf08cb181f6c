"""Convs with one output (or input) channel, aekernels vs PyTorch: the row-block direct
forward (csrc/aekernels/direct_templates.hpp, fwd_nchw_rows) and the stride-1
backward-input routed to it.

    python bench/few_channels.py [--threads 1] [--dtype float32] [--repeats 60]

Shapes: the conv autoencoder's last layer (conv_transpose2d 16 -> 1, 3x3, padding 1, on
(128, 16, 28, 28)), LeNet-5 c1's backward-input (conv 1 -> 6, 5x5 on (128, 1, 32, 32)),
and the forward conv 16 -> 1, 3x3, padding 1.  Minimum of `repeats` calls each, ours and
PyTorch's in the same process.  A script, not a test: never assert on its times.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import aekernels as ak


def best_ms(f, repeats: int) -> float:
    f()
    f()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=60)
    args = ap.parse_args()
    ak.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    dt = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    tconv = torch.nn.functional

    gy = rng.standard_normal((128, 16, 28, 28)).astype(dt)
    w = rng.standard_normal((16, 1, 3, 3)).astype(dt)
    gy2 = rng.standard_normal((128, 6, 28, 28)).astype(dt)
    w2 = rng.standard_normal((6, 1, 5, 5)).astype(dt)
    w3 = rng.standard_normal((1, 16, 3, 3)).astype(dt)
    out1, out2 = np.empty((128, 1, 28, 28), dt), np.empty((128, 1, 32, 32), dt)
    out3 = np.empty((128, 1, 28, 28), dt)
    t = {k: torch.from_numpy(v) for k, v in dict(gy=gy, w=w, gy2=gy2, w2=w2, w3=w3).items()}
    cases = [
        ("convae last bwd-input 16->1 3x3",
         lambda: ak.conv2d_backward_input(gy, w, (128, 1, 28, 28), 1, 1, out=out1),
         lambda: tconv.conv_transpose2d(t["gy"], t["w"], padding=1)),
        ("lenet c1 bwd-input 6->1 5x5",
         lambda: ak.conv2d_backward_input(gy2, w2, (128, 1, 32, 32), out=out2),
         lambda: tconv.conv_transpose2d(t["gy2"], t["w2"])),
        ("forward 16->1 3x3 pad 1",
         lambda: ak.conv2d(gy, w3, padding=1, out=out3),
         lambda: tconv.conv2d(t["gy"], t["w3"], padding=1)),
    ]
    print(f"threads={args.threads} dtype={dt.name} isa={ak._dispatch.isa()}")
    with torch.no_grad():
        for name, ours, theirs in cases:
            a = best_ms(ours, args.repeats)
            b = best_ms(theirs, args.repeats)
            a = min(a, best_ms(ours, args.repeats))
            print(f"  {name:34s} ours {a:7.3f} ms  torch {b:7.3f} ms  torch/ours {b / a:5.2f}")


if __name__ == "__main__":
    main()
