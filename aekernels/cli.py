"""Command line: ``aekernels info | demo | bench`` (``python -m aekernels ...`` is the same)."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import numpy as np


def _cmd_info(args: argparse.Namespace) -> int:
    import aekernels

    aekernels.show_config()
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """One forward+backward pass of the conv-AE's kernels on random images, timed."""
    import aekernels as ak

    rng = np.random.default_rng(0)
    x = rng.random((args.batch, 1, 28, 28), dtype=np.float32)
    w1 = (rng.standard_normal((16, 1, 3, 3)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((32, 16, 3, 3)) * 0.1).astype(np.float32)

    def step() -> float:
        h1 = np.maximum(ak.conv2d(x, w1, padding=1), 0)
        p1, i1 = ak.max_pool2d(h1, 2, return_indices=True)
        h2 = np.maximum(ak.conv2d(p1, w2, padding=1), 0)
        p2, i2 = ak.max_pool2d(h2, 2, return_indices=True)
        u2 = ak.max_unpool2d(p2, i2, 2, output_size=h2.shape)
        d2 = np.maximum(ak.conv_transpose2d(u2, w2, padding=1), 0)
        u1 = ak.max_unpool2d(d2, i1, 2, output_size=h1.shape)
        r = ak.conv_transpose2d(u1, w1, padding=1)
        g = 2 * (r - x) / r.size                      # d MSE / d r
        gu1 = ak.conv2d(g, w1, padding=1)              # adjoint of conv_transpose2d
        ak.conv2d_backward_filter(g, u1, w1.shape, padding=1)
        ak.max_unpool2d_backward(gu1, i1)
        return float(np.mean((r - x) ** 2))

    step()  # warm-up (numba compiles here)
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        loss = step()
    dt = (time.perf_counter() - t0) / args.repeat
    print(f"backend {ak.backend()}, {ak.get_num_threads()} threads: conv-AE kernels "
          f"(conv-pool-conv-pool-unpool-deconv-unpool-deconv + backward pieces) on "
          f"{args.batch} random 28x28 images")
    print(f"reconstruction MSE {loss:.4f} (untrained), {dt * 1e3:.1f} ms per pass, "
          f"{args.batch / dt:.0f} images/s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aekernels", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, backend, ISA path, threads").set_defaults(fn=_cmd_info)
    demo = sub.add_parser("demo", help="time the conv-AE kernels on random data")
    demo.add_argument("--batch", type=int, default=128)
    demo.add_argument("--repeat", type=int, default=5)
    demo.set_defaults(fn=_cmd_demo)
    from . import bench  # the options and the run live in aekernels/bench.py
    bench_p = sub.add_parser("bench", help="time the kernels against PyTorch on the DESIGN shapes")
    bench.add_arguments(bench_p)
    bench_p.set_defaults(fn=bench.run)
    from . import train
    train_p = sub.add_parser("train", help="train a model (conv-ae, lenet5, ...) on MNIST-5k")
    train.add_arguments(train_p)
    train_p.set_defaults(fn=train.run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aekernels`` command."""
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
