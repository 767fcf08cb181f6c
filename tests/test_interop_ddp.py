"""DistributedDataParallel over the aekernels torch layers (gloo, 2 local processes).

The gradients DDP all-reduces from two half-batches equal single-process gradients on
the whole batch, and a few SGD steps give the same parameters (fp64, so the only
difference is the order of the all-reduce sums).  The worker is bench/ddp_example.py,
the runnable example the README points to.
"""
from __future__ import annotations

import os
import sys

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is unavailable", allow_module_level=True)

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)       # spawned workers inherit sys.path and import it by name

import ddp_example  # noqa: E402


def test_ddp_two_processes_equal_single_process(tmp_path):
    steps, batch = 3, 16
    out = str(tmp_path / "rank0.pt")
    ddp_example.run_spawned(2, steps, batch, "float64", threads=1, out=out)
    got = torch.load(out)

    model = ddp_example.make_model(dtype=torch.float64)
    x, y = ddp_example.make_batch(batch, dtype=torch.float64)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    for k, p in model.named_parameters():
        torch.testing.assert_close(got["grads"][k], p.grad, rtol=1e-12, atol=1e-12,
                                   msg=lambda m: f"grad {k}: {m}")
    model.zero_grad()
    losses = ddp_example.train(model, x, y, steps)
    assert len(got["losses"]) == steps
    for k, v in model.state_dict().items():
        torch.testing.assert_close(got["params"][k], v, rtol=1e-10, atol=1e-12,
                                   msg=lambda m: f"param {k}: {m}")
    assert losses[-1] < losses[0]
