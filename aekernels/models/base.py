"""Model: a network + loss + optimiser with ``fit`` (tqdm progress bar), ``predict``,
``encode``, ``evaluate`` and ``.npz`` save/load.

The training loop does no per-sample Python work: one shuffled copy of the training set
per epoch, then every batch is a contiguous view of it.  Parameters live in one flat
buffer (``nn.flatten_parameters``), so an Adam step is a few whole-buffer operations.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any, Callable

import numpy as np

from .. import nn
from .._blas import single_thread_blas
from ..data import require


class History(dict):
    """Per-epoch lists: ``loss`` (training), ``test`` (the test metric), ``seconds``."""


_KERNEL_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.MaxUnpool2d, nn.AvgPool2d,
                  nn.Upsample)


def _uses_kernels(layer: Any) -> bool:
    """Whether a layer (or any layer inside a Sequential) runs the conv/pool kernels."""
    if isinstance(layer, _KERNEL_LAYERS):
        return True
    return any(_uses_kernels(child) for child in getattr(layer, "children", ()))


class Model:
    """A trainable network.

    Parameters
    ----------
    net : nn.Sequential
        The whole network; for autoencoders ``net[:code_index]`` is the encoder.
    loss : nn.Loss
    kind : "autoencoder" (target = input) or "classifier" (target = labels, logits out)
    code_index : int, optional
        Number of leading layers that produce the code (autoencoders).
    optimizer : "adam" or "sgd";  lr, momentum, weight_decay : its settings
    input_layout : "flat", "NCHW" or "NHWC": how the data must be shaped
    name, config : what ``save`` records so ``load`` can rebuild the model
    augment : callable (x, rng) -> x applied to training batches, optional
    seed : int, for shuffling and augmentation
    schedule : None (constant lr) or "cosine" (lr * (1 + cos(pi * epoch / epochs)) / 2 over
        each ``fit`` call, epoch counted from 0, so the first epoch runs at ``lr``)
    """

    def __init__(self, net: nn.Sequential, loss: nn.Loss, *, kind: str = "autoencoder",
                 code_index: int | None = None, optimizer: str = "adam", lr: float = 1e-3,
                 momentum: float = 0.9, weight_decay: float = 0.0, input_layout: str = "NCHW",
                 name: str = "model", config: dict | None = None, augment: Callable | None = None,
                 seed: int = 0, metric_name: str | None = None, schedule: str | None = None) -> None:
        if kind not in ("autoencoder", "classifier"):
            raise ValueError(f"kind must be 'autoencoder' or 'classifier', got {kind!r}")
        self.net, self.loss, self.kind = net, loss, kind
        self.code_index = code_index
        self.optimizer_name, self.lr, self.momentum, self.weight_decay = optimizer, lr, momentum, weight_decay
        self.input_layout, self.name = input_layout, name
        self.config = dict(config or {})
        self.augment = augment
        self.seed = seed
        if schedule not in (None, "cosine"):
            raise ValueError(f"schedule must be None or 'cosine', got {schedule!r}")
        self.schedule = schedule
        self.rng = np.random.default_rng(seed + 1_000_003)
        self.metric_name = metric_name or ("test_mse" if kind == "autoencoder" else "test_accuracy")
        self.history = History(loss=[], test=[], seconds=[])
        self.log: Callable[[str], None] = print
        # nobody needs d loss / d data: the first layer with parameters (and the
        # parameter-free ones before it, e.g. input noise) skip their input gradient
        for layer in self.net.children:
            layer.need_input_grad = False
            if layer.params():
                break
        self._setup_optimizer()

    # ------------------------------------------------------------------ plumbing
    def _setup_optimizer(self) -> None:
        """(Re)home every parameter into one flat buffer and build the optimiser on it."""
        self.flat_params, self.flat_grads = nn.flatten_parameters([self.net])
        p, g = [self.flat_params], [self.flat_grads]
        if self.optimizer_name == "adam":
            self.optimizer = nn.Adam(p, g, lr=self.lr, weight_decay=self.weight_decay)
        elif self.optimizer_name == "sgd":
            self.optimizer = nn.SGD(p, g, lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay)
        else:
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer_name!r}")

    @property
    def dtype(self) -> np.dtype:
        return self.flat_params.dtype

    def _penalties(self) -> float:
        return sum(l.penalty for l in nn.penalty_layers(self.net))

    def train_step(self, xb: np.ndarray, target: np.ndarray) -> float:
        """One forward/backward/update on a batch; returns the loss (incl. penalties)."""
        out = self.net.forward(xb)
        loss = self.loss.forward(out, target) + self._penalties()
        self.net.backward(self.loss.backward())
        self.optimizer.step()
        return loss

    # ------------------------------------------------------------------ training
    def fit(self, x: np.ndarray, y: np.ndarray | None = None, *, epochs: int = 10,
            batch_size: int = 128, validation: tuple | None = None, progress: Any = "auto",
            phase: str = "", on_epoch: Callable[[int, dict], None] | None = None) -> History:
        """Train for ``epochs`` passes over ``x`` (targets: ``x`` itself for autoencoders,
        labels ``y`` for classifiers) in shuffled mini-batches.

        ``validation=(x_test, y_test)`` computes the test metric after every epoch.
        ``progress``: True (tqdm bar; needs tqdm), False, or "auto" (a bar if tqdm is
        installed and stderr is a terminal).  Every epoch logs one line: loss, test
        metric, seconds per epoch (training only), throughput.
        """
        # With conv/pool kernels in the loop, NumPy's BLAS pool must not spin against
        # their OpenMP team (aekernels/_blas.py); purely dense models keep BLAS threads.
        blas = single_thread_blas() if _uses_kernels(self.net) else contextlib.nullcontext()
        with blas:
            return self._fit(x, y, epochs=epochs, batch_size=batch_size, validation=validation,
                             progress=progress, phase=phase, on_epoch=on_epoch)

    def _fit(self, x: np.ndarray, y: np.ndarray | None, *, epochs: int, batch_size: int,
             validation: tuple | None, progress: Any, phase: str,
             on_epoch: Callable[[int, dict], None] | None) -> History:
        x = np.asarray(x, dtype=self.dtype)
        if self.kind == "classifier" and y is None:
            raise ValueError("a classifier needs labels y")
        n = len(x)
        bar_cls = self._progress_class(progress)
        for epoch in range(epochs):
            if self.schedule == "cosine":
                self.optimizer.lr = self.lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
            self.net.train()
            perm = self.rng.permutation(n)
            ys = None if y is None else np.asarray(y)[perm]
            it = range(0, n, batch_size)
            bar = None
            if bar_cls is not None:
                bar = bar_cls(total=n, unit="img", leave=False, dynamic_ncols=True,
                              desc=f"{phase or self.name} {epoch + 1}/{epochs}")
            t0 = time.perf_counter()
            total, count = 0.0, 0
            for start in it:
                xb = x[perm[start:start + batch_size]]  # gathered per batch: still in cache for layer 1
                inp = self.augment(xb, self.rng) if self.augment is not None else xb
                target = xb if self.kind == "autoencoder" else ys[start:start + batch_size]
                if self.kind == "autoencoder" and self.augment is not None:
                    target = inp
                loss = self.train_step(inp, target)
                total += loss * len(xb)
                count += len(xb)
                if bar is not None:
                    bar.update(len(xb))
                    el = time.perf_counter() - t0
                    bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{count / max(el, 1e-9):.0f}")
            seconds = time.perf_counter() - t0
            if bar is not None:
                bar.close()
            if not np.isfinite(total):
                raise FloatingPointError(f"{self.name}: loss became {total} in epoch {epoch + 1}")
            record = {"epoch": epoch + 1, "loss": total / count, "seconds": seconds}
            if validation is not None:
                record[self.metric_name] = self.score(*validation)
            self.history["loss"].append(record["loss"])
            self.history["seconds"].append(seconds)
            self.history["test"].append(record.get(self.metric_name))
            line = f"{phase + ' ' if phase else ''}epoch {epoch + 1:3d}/{epochs}  loss {record['loss']:.5f}"
            if validation is not None:
                line += f"  {self.metric_name} {record[self.metric_name]:.5f}"
            line += f"  {seconds:.2f} s/epoch  ({n / seconds:.0f} img/s)"
            self.log(line)
            if on_epoch is not None:
                on_epoch(epoch, record)
        self.net.eval()
        return self.history

    @staticmethod
    def _progress_class(progress: Any):
        if progress is False or progress is None:
            return None
        if progress == "auto":
            try:
                import tqdm  # noqa: F401
            except ImportError:
                return None
            if not sys.stderr.isatty():
                return None
            progress = True
        if progress is True:
            return require("tqdm.auto", "the progress bar of fit()").tqdm
        return progress                       # a tqdm-like class

    # ------------------------------------------------------------------ inference
    def _batched(self, fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                 batch_size: int) -> np.ndarray:
        self.net.eval()
        x = np.asarray(x, dtype=self.dtype)
        # layers return fresh arrays, so the batch outputs can be concatenated directly
        outs = [fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if outs else np.empty((0,), self.dtype)

    def predict(self, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Network output in eval mode: reconstructions (AE) or logits (classifier)."""
        return self._batched(self.net.forward, x, batch_size)

    def encode(self, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Codes (the output of the first ``code_index`` layers), flattened per sample."""
        if self.code_index is None:
            raise ValueError(f"{self.name} has no code layer")
        enc = self.net.children[:self.code_index]

        def run(xb):
            for layer in enc:
                xb = layer.forward(xb)
            return xb
        codes = self._batched(run, x, batch_size)
        return codes.reshape(len(codes), -1)

    def reconstruction_errors(self, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Per-sample mean squared reconstruction error (autoencoders)."""
        x = np.asarray(x, dtype=self.dtype)
        r = self.predict(x, batch_size)
        return np.mean((r.reshape(len(x), -1) - x.reshape(len(x), -1)) ** 2, axis=1, dtype=np.float64)

    def score(self, x: np.ndarray, y: np.ndarray | None = None) -> float:
        """Test MSE (autoencoder) or accuracy (classifier)."""
        if self.kind == "classifier":
            return float(np.mean(self.predict(x).argmax(1) == np.asarray(y)))
        return float(np.mean(self.reconstruction_errors(x)))

    # ------------------------------------------------------------------ persistence
    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"param_{i:03d}": p for i, p in enumerate(self.net.params())}
        arrays.update({f"buffer_{i:03d}": b for i, b in enumerate(self.net.buffers())})
        return arrays

    def save(self, path: str) -> str:
        """Write parameters, buffers (e.g. BN running stats) and the build config to ``.npz``."""
        meta = json.dumps({"model": self.name, "config": self.config, "format": 1})
        np.savez(path, __meta__=np.array(meta), **self.state_arrays())
        return path if str(path).endswith(".npz") else f"{path}.npz"

    def load_state(self, path: str) -> "Model":
        with np.load(path) as f:
            for kind, arrays in (("param", self.net.params()), ("buffer", self.net.buffers())):
                for i, a in enumerate(arrays):
                    src = f[f"{kind}_{i:03d}"]
                    if src.shape != a.shape:
                        raise ValueError(f"{path}: {kind} {i} has shape {src.shape}, model expects {a.shape}")
                    a[...] = src
        return self

    def __repr__(self) -> str:
        return f"<{self.name}: {nn.count_params(self.net):,} parameters\n{self.net!r}>"


def load(path: str) -> Model:
    """Rebuild a model saved with ``Model.save`` (architecture from its recorded config)."""
    from .zoo import build

    with np.load(path) as f:
        meta = json.loads(str(f["__meta__"]))
    model = build(meta["model"], **meta["config"])
    return model.load_state(path)
