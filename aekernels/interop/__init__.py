"""Adapters that let other frameworks call the aekernels kernels.

* :mod:`aekernels.interop.torch` -- ``torch.library`` custom ops under ``aekernels::``
  with autograd and fake (meta) implementations, functional wrappers with
  ``torch.nn.functional``'s signatures, and drop-in ``nn.Module`` layers
  (``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d``, ``AvgPool2d``, ``MaxUnpool2d``).
  Needs PyTorch.
* :mod:`aekernels.interop.jax` -- ``conv2d``, ``conv_transpose2d``, ``max_pool2d``,
  ``avg_pool2d``, ``max_unpool2d`` as ``jax.custom_vjp`` functions over
  ``jax.pure_callback``; they work under ``jit``, ``grad`` (any order) and ``vmap``.
  Needs JAX.

Neither is imported by ``import aekernels``; import the submodule you need.

NumPy-level interop needs no adapter: every kernel accepts anything NumPy can view
without copying (``ndarray``, the buffer protocol, ``__array_interface__``,
``__dlpack__``, e.g. CPU ``torch.Tensor`` and ``jax.Array``) and reads contiguous
inputs in place.  Results are ``numpy.ndarray``; ``torch.from_numpy(y)`` or
``jax.numpy.asarray(y)`` take them back.

Compiled consumers: ``cimport aekernels._pool`` gives the nogil Cython pooling
kernels (see ``aekernels/_pool.pxd``), and ``aekernels.get_include()`` the C++
header directory (``#include <aekernels/...>``).

Adapters hold no maths: shapes, argument checking and errors all come from the NumPy
API (``aekernels._api``), so a bad argument raises the same ``ValueError`` or
``TypeError`` with the same message through every adapter.
"""
from __future__ import annotations

__all__: list[str] = []
