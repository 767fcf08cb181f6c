"""Weight initialisation (He / Glorot, and PyTorch's default), seeded.

``fan_in``/``fan_out`` are given by the layer (it knows its weight layout).
"""
from __future__ import annotations

import math

import numpy as np

INITS = ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "torch")


def init_weight(shape: tuple[int, ...], fan_in: int, fan_out: int, method: str,
                rng: np.random.Generator, dtype) -> np.ndarray:
    """A weight array of ``shape`` drawn by ``method``.

    he_normal: N(0, 2/fan_in); he_uniform: U(+-sqrt(6/fan_in));
    glorot_normal: N(0, 2/(fan_in+fan_out)); glorot_uniform: U(+-sqrt(6/(fan_in+fan_out)));
    torch: U(+-1/sqrt(fan_in)) (PyTorch's default kaiming_uniform(a=sqrt(5))).
    """
    if method == "he_normal":
        w = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
    elif method == "he_uniform":
        b = math.sqrt(6.0 / fan_in)
        w = rng.uniform(-b, b, shape)
    elif method == "glorot_normal":
        w = rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))
    elif method == "glorot_uniform":
        b = math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-b, b, shape)
    elif method == "torch":
        b = 1.0 / math.sqrt(fan_in)
        w = rng.uniform(-b, b, shape)
    else:
        raise ValueError(f"init must be one of {INITS}, got {method!r}")
    return np.ascontiguousarray(w, dtype=dtype)


def init_bias(n: int, fan_in: int, method: str, rng: np.random.Generator, dtype) -> np.ndarray:
    """Zeros, except PyTorch's default U(+-1/sqrt(fan_in)) for ``method="torch"``."""
    if method == "torch":
        b = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-b, b, n).astype(dtype)
    return np.zeros(n, dtype)


def default_rng(rng) -> np.random.Generator:
    """``rng`` if it is a Generator, else ``np.random.default_rng(rng)`` (a seed or None)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
