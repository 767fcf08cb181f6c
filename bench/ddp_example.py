"""Data-parallel training of a CNN built from aekernels layers with PyTorch DDP.

The aekernels layers (``aekernels.interop.torch``) are ordinary ``torch.nn`` modules
whose forward and backward run on the aekernels CPU kernels, so
``torch.nn.parallel.DistributedDataParallel`` wraps them unchanged: each process
computes gradients on its shard of the batch with the aekernels kernels and DDP
all-reduces (averages) them over gloo.

One machine, 2 processes (spawned here)::

    python bench/ddp_example.py --nproc 2 --steps 20

The same script under torchrun, on one host or many (run the command on every host,
``--node_rank`` 0..nnodes-1, ``--master_addr`` = host of rank 0)::

    torchrun --nproc_per_node=2 bench/ddp_example.py --steps 20
    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=2 \\
             --master_addr=10.0.0.1 --master_port=29500 bench/ddp_example.py --steps 20

Each process uses ``--threads`` kernel threads (default 1); give each process its own
cores (nproc_per_node x threads <= cores per host).
"""
from __future__ import annotations

import argparse
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

import aekernels
from aekernels.interop import torch as aet


def make_model(seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """LeNet-like CNN on 1x16x16 images, every conv/pool from aekernels."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        aet.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU(), aet.MaxPool2d(2),      # 6x8x8
        aet.Conv2d(6, 12, 3, padding="same"), torch.nn.ReLU(), aet.AvgPool2d(2),  # 12x4x4
        torch.nn.Flatten(), torch.nn.Linear(12 * 4 * 4, 10),
    ).to(dtype)


def make_batch(n: int, seed: int = 1, dtype: torch.dtype = torch.float32):
    """Synthetic images and labels (the same on every process: shards are sliced)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 16, 16, generator=g, dtype=dtype), torch.randint(0, 10, (n,), generator=g)


def shard(x: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous slice of the global batch (equal sizes)."""
    n = x.shape[0] // world
    return x[rank * n:(rank + 1) * n]


def train(model: torch.nn.Module, x, y, steps: int, lr: float = 0.05):
    """``steps`` SGD steps on (x, y); returns the losses."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def worker(rank: int, world: int, init_method: str, steps: int, global_batch: int,
           dtype_name: str, threads: int, out: str | None) -> None:
    """One DDP process: train on its shard; rank 0 optionally saves grads and params."""
    torch.set_num_threads(threads)
    aekernels.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world)
    try:
        dtype = getattr(torch, dtype_name)
        model = DDP(make_model(dtype=dtype))
        x, y = make_batch(global_batch, dtype=dtype)
        xs, ys = shard(x, rank, world), shard(y, rank, world)
        # First step: keep the all-reduced gradients for the caller to compare.
        loss = F.cross_entropy(model(xs), ys)
        loss.backward()
        grads = {k: p.grad.clone() for k, p in model.module.named_parameters()}
        model.zero_grad()
        t0 = time.perf_counter()
        losses = train(model, xs, ys, steps)
        if rank == 0:
            if out:
                torch.save({"grads": grads, "params": model.module.state_dict(),
                            "losses": losses}, out)
            print(f"DDP world={world}: {steps} steps in {time.perf_counter() - t0:.2f} s, "
                  f"loss {losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "")
        # Leave together: a rank that tears gloo down while rank 0 is still saving can
        # abort in gloo's threads at exit ("terminate called without an active
        # exception", seen once in CI).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_spawned(nproc: int, steps: int, global_batch: int, dtype_name: str = "float32",
                threads: int = 1, out: str | None = None) -> None:
    """Spawn ``nproc`` local processes (gloo over localhost TCP)."""
    init = f"tcp://127.0.0.1:{free_port()}"
    mp.spawn(worker, args=(nproc, init, steps, global_batch, dtype_name, threads, out),
             nprocs=nproc, join=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nproc", type=int, default=2, help="processes to spawn (ignored under torchrun)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64, help="global batch size")
    ap.add_argument("--threads", type=int, default=1, help="kernel threads per process")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args(argv)
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:     # launched by torchrun
        worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), "env://", args.steps,
               args.batch, args.dtype, args.threads, None)
    else:
        run_spawned(args.nproc, args.steps, args.batch, args.dtype, args.threads)


if __name__ == "__main__":
    main()
