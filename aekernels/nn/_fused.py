"""Fused element-wise steps of the layers and optimisers, one pass over memory each.

NumPy needs several passes (and temporaries) for e.g. an Adam update or a ReLU gradient;
these numba kernels do one.  numba is a hard dependency of aekernels; if these kernels
cannot compile (or ``AEKERNELS_NN_FUSED=0``), the callers fall back to NumPy.
Kernels take flat (1-D) contiguous views.
"""
from __future__ import annotations

import os

import numpy as np

ENABLED = os.environ.get("AEKERNELS_NN_FUSED", "1") != "0"

try:
    if not ENABLED:
        raise ImportError("disabled by AEKERNELS_NN_FUSED=0")
    from numba import njit, prange

    _opts = dict(cache=True, nogil=True, parallel=True, fastmath=False)

    @njit(**_opts)
    def adam_step(p, g, m, v, b1, b2, step_size, bc2_sqrt, eps, wd):  # pragma: no cover - numba
        # PyTorch's arithmetic: p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps)
        n = p.shape[0]
        for i in prange(n):
            gi = g[i]
            if wd != 0.0:
                gi = gi + wd * p[i]
            mi = b1 * m[i] + (1.0 - b1) * gi
            vi = b2 * v[i] + (1.0 - b2) * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] -= step_size * (mi / (np.sqrt(vi) / bc2_sqrt + eps))

    @njit(**_opts)
    def relu_backward(g, y):  # pragma: no cover - numba
        for i in prange(g.shape[0]):
            if not y[i] > 0:
                g[i] = 0

    @njit(**_opts)
    def sigmoid_forward(x, y):  # pragma: no cover - numba
        for i in prange(x.shape[0]):
            y[i] = 1.0 / (1.0 + np.exp(-x[i]))

    @njit(**_opts)
    def sigmoid_backward(g, y):  # pragma: no cover - numba
        for i in prange(g.shape[0]):
            g[i] = g[i] * y[i] * (1 - y[i])

    AVAILABLE = True
except Exception:  # pragma: no cover - numba missing or broken: NumPy paths are used
    AVAILABLE = False


def flat(a: np.ndarray) -> np.ndarray | None:
    """A 1-D view of ``a`` if it is C-contiguous, else None."""
    return a.reshape(-1) if a.flags.c_contiguous else None
