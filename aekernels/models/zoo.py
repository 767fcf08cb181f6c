"""The models of DESIGN.md ("Models"), built from aekernels.nn layers.

``build(name, **config)`` returns a :class:`Model`; ``MODELS[name]`` holds the defaults
``aekernels train`` uses (epochs, batch size, data shape).  Every builder takes
``seed`` (all initial weights, dropout/noise and shuffling derive from it) and
``dtype`` ("float32" default, "float64").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import nn
from ..data import Augment
from .base import Model


def _rngs(seed: int):
    """Independent, reproducible generators for the layers of one model."""
    ss = np.random.SeedSequence(seed)
    for child in ss.spawn(64):
        yield np.random.default_rng(child)


def _dt(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


# --------------------------------------------------------------------------- dense AEs


def _mlp(sizes, acts, rng, dt, init="he_uniform"):
    """Linear layers between ``sizes`` each followed by the activation factory in ``acts``."""
    layers = []
    for (a, b), act in zip(zip(sizes[:-1], sizes[1:]), acts):
        layers.append(nn.Linear(a, b, rng=next(rng), dtype=dt, init=init))
        if act is not None:
            layers.append(act())
    return layers


def dense_ae(seed: int = 0, dtype="float32", input_dim: int = 784, hidden: int = 256, code: int = 32,
             lr: float = 1e-3, noise: str | None = None, noise_level: float = 0.3) -> Model:
    """784-256-32-256-784: ReLU hidden layers, linear code, sigmoid output, MSE, Adam.

    ``noise="gaussian"|"masking"`` makes it a denoising AE (corruption in training only)."""
    dt, rng = _dt(dtype), _rngs(seed)
    relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
    layers: list[nn.Layer] = []
    if noise == "gaussian":
        layers.append(nn.GaussianNoise(noise_level, clip=(0.0, 1.0), rng=next(rng)))
    elif noise == "masking":
        layers.append(nn.MaskingNoise(noise_level, rng=next(rng)))
    elif noise is not None:
        raise ValueError(f"noise must be None, 'gaussian' or 'masking', got {noise!r}")
    enc = _mlp([input_dim, hidden, code], [relu, None], rng, dt)
    dec = _mlp([code, hidden, input_dim], [relu, lambda: nn.Sigmoid(inplace=True)], rng, dt)
    layers += enc
    name = "denoising-ae" if noise else "dense-ae"
    cfg = dict(seed=seed, dtype=dt.name, input_dim=input_dim, hidden=hidden, code=code, lr=lr,
               noise=noise, noise_level=noise_level)
    return Model(nn.Sequential(layers + dec), nn.MSELoss(), code_index=len(layers), lr=lr,
                 input_layout="flat", name=name, config=cfg, seed=seed)


def denoising_ae(seed: int = 0, dtype="float32", noise: str = "gaussian", noise_level: float = 0.3,
                 **kw) -> Model:
    """dense-ae with input corruption (Gaussian, std 0.3, clipped to [0, 1]; or masking)."""
    return dense_ae(seed, dtype, noise=noise, noise_level=noise_level, **kw)


def linear_ae(seed: int = 0, dtype="float32", input_dim: int = 784, code: int = 32,
              lr: float = 2e-3, schedule: str | None = "cosine") -> Model:
    """784-32-784 without activations: its optimum spans the PCA subspace of size ``code``."""
    dt, rng = _dt(dtype), _rngs(seed)
    layers = _mlp([input_dim, code, input_dim], [None, None], rng, dt, init="glorot_uniform")
    cfg = dict(seed=seed, dtype=dt.name, input_dim=input_dim, code=code, lr=lr, schedule=schedule)
    return Model(nn.Sequential(layers), nn.MSELoss(), code_index=1, lr=lr, input_layout="flat",
                 schedule=schedule,
                 name="linear-ae", config=cfg, seed=seed)


def sparse_ae(seed: int = 0, dtype="float32", input_dim: int = 784, hidden: int = 256,
              sparsity: str = "kl", rho: float = 0.05, beta: float = 0.003, l1: float = 1e-4,
              lr: float = 5e-3) -> Model:
    """One over-complete-ish hidden layer with a sparsity penalty on it:
    "kl": sigmoid code + beta * sum KL(rho || mean activation); "l1": ReLU code + L1.
    (The loss is a per-pixel mean, 1/784 of the per-image sums of the classic sparse-AE
    papers, hence beta 0.003 where they use ~3; sigmoid codes learn slowly, hence lr 5e-3.)"""
    dt, rng = _dt(dtype), _rngs(seed)
    init = "glorot_uniform" if sparsity == "kl" else "he_uniform"
    enc: list[nn.Layer] = [nn.Linear(input_dim, hidden, rng=next(rng), dtype=dt, init=init)]
    if sparsity == "kl":
        enc += [nn.Sigmoid(inplace=True), nn.KLSparsityPenalty(rho, beta)]
    elif sparsity == "l1":
        enc += [nn.ReLU(inplace=True), nn.L1ActivityPenalty(l1)]
    else:
        raise ValueError(f"sparsity must be 'kl' or 'l1', got {sparsity!r}")
    dec = [nn.Linear(hidden, input_dim, rng=next(rng), dtype=dt), nn.Sigmoid(inplace=True)]
    cfg = dict(seed=seed, dtype=dt.name, input_dim=input_dim, hidden=hidden, sparsity=sparsity,
               rho=rho, beta=beta, l1=l1, lr=lr)
    return Model(nn.Sequential(enc + dec), nn.MSELoss(), code_index=len(enc), lr=lr,
                 input_layout="flat", name="sparse-ae", config=cfg, seed=seed)


class StackedAE(Model):
    """Greedy layer-wise pretraining (one shallow AE per layer, each on the codes of the
    one below), then fine-tuning of the whole stack.  Both phases are logged."""

    def __init__(self, layers, pretrain_epochs: int, **kw) -> None:
        self.enc_layers, self.dec_layers = layers
        self.pretrain_epochs = pretrain_epochs
        net = nn.Sequential([l for pair in self.enc_layers for l in pair] +
                            [l for pair in reversed(self.dec_layers) for l in pair])
        super().__init__(net, nn.MSELoss(), code_index=2 * len(self.enc_layers), **kw)
        self.pretrain_history: list = []

    def pretrain(self, x, *, epochs: int | None = None, batch_size: int = 128, progress="auto") -> None:
        epochs = self.pretrain_epochs if epochs is None else epochs
        h = np.asarray(x, self.dtype)
        for k, (enc, dec) in enumerate(zip(self.enc_layers, self.dec_layers)):
            shallow = Model(nn.Sequential(list(enc) + list(dec)), nn.MSELoss(), lr=self.lr,
                            input_layout="flat", name=f"{self.name} layer {k + 1}",
                            seed=self.seed + 17 * (k + 1))
            shallow.log = self.log
            self.log(f"pretraining layer {k + 1}: {enc[0].in_features}-{enc[0].out_features}-"
                     f"{enc[0].in_features} on {'the input' if k == 0 else f'layer {k} codes'}")
            self.pretrain_history.append(shallow.fit(h, epochs=epochs, batch_size=batch_size,
                                                     progress=progress, phase=f"pretrain L{k + 1}"))
            shallow.net.eval()
            h = shallow._batched(lambda b: nn.Sequential(list(enc)).forward(b), h, 500)
        # the shallow models re-homed the shared layers' parameters (and marked their
        # first layers as not needing input gradients): rebuild ours
        for layer in self.net.children:
            layer.need_input_grad = True
            if layer.params():
                layer.need_input_grad = False
                break
        self._setup_optimizer()

    def fit(self, x, y=None, *, epochs: int = 10, batch_size: int = 128, validation=None,
            progress="auto", phase: str = "", on_epoch=None, pretrain: bool = True):
        if pretrain and not self.pretrain_history:
            self.pretrain(x, batch_size=batch_size, progress=progress)
            self.log("fine-tuning the whole stack")
        return super().fit(x, y, epochs=epochs, batch_size=batch_size, validation=validation,
                           progress=progress, phase=phase or "fine-tune", on_epoch=on_epoch)


def stacked_ae(seed: int = 0, dtype="float32", input_dim: int = 784, sizes=(256, 64),
               pretrain_epochs: int = 3, lr: float = 1e-3) -> Model:
    """784-256-64-256-784 built from two shallow AEs (784-256-784, 256-64-256)."""
    dt, rng = _dt(dtype), _rngs(seed)
    dims = [input_dim] + list(sizes)
    enc, dec = [], []
    for k, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        enc.append((nn.Linear(a, b, rng=next(rng), dtype=dt), nn.ReLU(inplace=True)))
        out_act = nn.Sigmoid(inplace=True) if k == 0 else nn.ReLU(inplace=True)
        dec.append((nn.Linear(b, a, rng=next(rng), dtype=dt), out_act))
    cfg = dict(seed=seed, dtype=dt.name, input_dim=input_dim, sizes=list(sizes),
               pretrain_epochs=pretrain_epochs, lr=lr)
    return StackedAE((enc, dec), pretrain_epochs, lr=lr, input_layout="flat", name="stacked-ae",
                     config=cfg, seed=seed)


def anomaly_ae(seed: int = 0, dtype="float32", input_dim: int = 784, sizes=(256, 64, 16),
               lr: float = 1e-3) -> Model:
    """Deep AE 784-256-64-16-64-256-784 trained on clean digits; its per-image
    reconstruction error is the anomaly score."""
    dt, rng = _dt(dtype), _rngs(seed)
    relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
    dims = [input_dim] + list(sizes)
    enc = _mlp(dims, [relu] * (len(dims) - 2) + [None], rng, dt)
    dec = _mlp(dims[::-1], [relu] * (len(dims) - 2) + [lambda: nn.Sigmoid(inplace=True)], rng, dt)
    cfg = dict(seed=seed, dtype=dt.name, input_dim=input_dim, sizes=list(sizes), lr=lr)
    return Model(nn.Sequential(enc + dec), nn.MSELoss(), code_index=len(enc), lr=lr,
                 input_layout="flat", name="anomaly", config=cfg, seed=seed)


# --------------------------------------------------------------------------- conv models


def conv_ae(seed: int = 0, dtype="float32", layout: str = "NCHW", channels=(16, 32),
            lr: float = 1e-3, init: str = "he_uniform") -> Model:
    """DESIGN.md's conv AE: Conv(1->16,3x3,p1) ReLU MaxPool2 [indices] -> Conv(16->32,3x3,p1)
    ReLU MaxPool2 [indices] -> MaxUnpool2 -> ConvT(32->16,3x3,p1) ReLU -> MaxUnpool2 ->
    ConvT(16->1,3x3,p1) Sigmoid; MSE; Adam 1e-3."""
    dt, rng = _dt(dtype), _rngs(seed)
    c1, c2 = channels
    kw = dict(layout=layout, dtype=dt, init=init)
    p1, p2 = nn.MaxPool2d(2, layout=layout), nn.MaxPool2d(2, layout=layout)
    net = nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1, rng=next(rng), **kw), nn.ReLU(inplace=True), p1,
        nn.Conv2d(c1, c2, 3, padding=1, rng=next(rng), **kw), nn.ReLU(inplace=True), p2,
        nn.MaxUnpool2d(p2),
        nn.ConvTranspose2d(c2, c1, 3, padding=1, rng=next(rng), **kw), nn.ReLU(inplace=True),
        nn.MaxUnpool2d(p1),
        nn.ConvTranspose2d(c1, 1, 3, padding=1, rng=next(rng), **kw), nn.Sigmoid(inplace=True))
    cfg = dict(seed=seed, dtype=dt.name, layout=layout, channels=list(channels), lr=lr, init=init)
    return Model(net, nn.MSELoss(), code_index=6, lr=lr, input_layout=layout, name="conv-ae",
                 config=cfg, seed=seed)


def seed_ae_145(seed: int = 0, dtype="float32", lr: float = 1e-3, width: int = 1) -> Model:
    """The TF-style conv AE of the seed notes on 145x145x1 NHWC inputs; every conv/convT
    but the last conv is followed by BatchNorm and ReLU.

    encoder: conv 4x4 valid ->32 (142) | conv 3x3 valid ->64 (140) | maxpool 5x5/5 (28) |
             conv 3x3 valid ->128 (26) | maxpool 2x2/2 -> code 13x13x128
    decoder: convT 2x2/2 ->128 (26) | convT 3x3 ->64 (28) | convT 5x5/5 ->64 (140) |
             convT 3x3 ->32 (142) | convT 4x4 ->1 (145) | conv 2x2 "same" ->1 (145)
    ``width`` divides the channel counts (tests use a slimmer copy)."""
    dt, rng = _dt(dtype), _rngs(seed)
    L = "NHWC"
    c32, c64, c128 = 32 // width, 64 // width, 128 // width

    def block(layer, ch):
        return [layer, nn.BatchNorm2d(ch, layout=L, dtype=dt), nn.ReLU(inplace=True)]
    kw = dict(layout=L, dtype=dt)
    enc = (block(nn.Conv2d(1, c32, 4, padding="valid", rng=next(rng), **kw), c32)
           + block(nn.Conv2d(c32, c64, 3, padding="valid", rng=next(rng), **kw), c64)
           + [nn.MaxPool2d(5, layout=L)]
           + block(nn.Conv2d(c64, c128, 3, padding="valid", rng=next(rng), **kw), c128)
           + [nn.MaxPool2d(2, layout=L)])
    dec = (block(nn.ConvTranspose2d(c128, c128, 2, stride=2, rng=next(rng), **kw), c128)
           + block(nn.ConvTranspose2d(c128, c64, 3, rng=next(rng), **kw), c64)
           + block(nn.ConvTranspose2d(c64, c64, 5, stride=5, rng=next(rng), **kw), c64)
           + block(nn.ConvTranspose2d(c64, c32, 3, rng=next(rng), **kw), c32)
           + block(nn.ConvTranspose2d(c32, 1, 4, rng=next(rng), **kw), 1)
           + [nn.Conv2d(1, 1, 2, padding="same", rng=next(rng), init="glorot_uniform", **kw)])
    cfg = dict(seed=seed, dtype=dt.name, lr=lr, width=width)
    return Model(nn.Sequential(enc + dec), nn.MSELoss(), code_index=len(enc), lr=lr,
                 input_layout="NHWC", name="seed-ae-145", config=cfg, seed=seed)


def lenet5(seed: int = 0, dtype="float32", layout: str = "NCHW", image_size: int = 28,
           classes: int = 10, lr: float = 2e-3, crop: int = 2, schedule: str | None = "cosine") -> Model:
    """LeNet-5: conv5x5(6, pad 2) ReLU maxpool2 - conv5x5(16) ReLU maxpool2 - fc120 ReLU -
    fc84 ReLU - fc10 (softmax in the cross-entropy loss); Adam (lr 2e-3, cosine decay over
    the run); random-shift augmentation of up to ``crop`` pixels."""
    dt, rng = _dt(dtype), _rngs(seed)
    kw = dict(layout=layout, dtype=dt)
    side = (image_size // 2 - 4) // 2
    if side < 1:
        raise ValueError(f"lenet5 needs images of at least 12x12, got {image_size}")
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, rng=next(rng), **kw), nn.ReLU(inplace=True), nn.MaxPool2d(2, layout=layout),
        nn.Conv2d(6, 16, 5, rng=next(rng), **kw), nn.ReLU(inplace=True), nn.MaxPool2d(2, layout=layout),
        nn.Flatten(),
        nn.Linear(16 * side * side, 120, rng=next(rng), dtype=dt), nn.ReLU(inplace=True),
        nn.Linear(120, 84, rng=next(rng), dtype=dt), nn.ReLU(inplace=True),
        nn.Linear(84, classes, rng=next(rng), dtype=dt, init="glorot_uniform"))
    cfg = dict(seed=seed, dtype=dt.name, layout=layout, image_size=image_size, classes=classes,
               lr=lr, crop=crop, schedule=schedule)
    return Model(net, nn.CrossEntropyLoss(), kind="classifier", code_index=10, lr=lr, schedule=schedule,
                 input_layout=layout, name="lenet5", config=cfg, seed=seed,
                 augment=Augment(crop=crop, layout=layout) if crop else None)


# --------------------------------------------------------------------------- registry


@dataclass
class Spec:
    builder: Callable[..., Model]
    epochs: int
    batch_size: int = 128
    help: str = ""
    data: dict = field(default_factory=dict)      # extra options for the data loader


MODELS: dict[str, Spec] = {
    "dense-ae": Spec(dense_ae, 20, help="784-256-32-256-784 dense autoencoder"),
    "linear-ae": Spec(linear_ae, 40, help="784-32-784 linear AE, compared with PCA(32)"),
    "sparse-ae": Spec(sparse_ae, 20, help="784-256-784 with a KL sparsity penalty"),
    "denoising-ae": Spec(denoising_ae, 20, help="dense AE trained on Gaussian-corrupted inputs"),
    "stacked-ae": Spec(stacked_ae, 15, help="784-256-64-256-784, greedy pretraining + fine-tuning"),
    "anomaly": Spec(anomaly_ae, 30, help="deep AE; reconstruction error flags corrupted digits (ROC-AUC)"),
    "conv-ae": Spec(conv_ae, 40, help="conv-pool-conv-pool / unpool-deconv-unpool-deconv (DESIGN.md)"),
    "seed-ae-145": Spec(seed_ae_145, 2, batch_size=16,
                        help="the seed notes' NHWC conv AE on 145x145 (MNIST x5, padded)",
                        data=dict(train_size=512, test_size=128)),
    "lenet5": Spec(lenet5, 20, help="LeNet-5 classifier (random-shift augmentation)"),
}


def build(name: str, **config: Any) -> Model:
    """Build model ``name`` (one of ``MODELS``) with builder keyword arguments."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name].builder(**config)
