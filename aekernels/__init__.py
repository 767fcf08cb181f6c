"""aekernels: fast CPU convolution and pooling kernels, and the models built on them.

The kernels (``conv2d``, ``conv2d_backward_input``, ``max_pool2d``, ...) take and return
NumPy arrays (anything NumPy can view goes in) and run on the ``native`` backend
(C++/Cython, OpenMP) or, when that is unavailable, the ``numba`` backend.  See
``show_config()`` and ``use_backend()``.
"""
from __future__ import annotations

import os as _os

__version__ = "0.1.0"

from ._api import (  # noqa: E402
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward_bias,
    conv2d_backward_filter,
    conv2d_backward_input,
    conv_transpose2d,
    max_pool2d,
    max_pool2d_backward,
    max_unpool2d,
    max_unpool2d_backward,
    upsample_nearest2d,
    upsample_nearest2d_backward,
)
from ._dispatch import (  # noqa: E402
    available_backends,
    backend,
    get_conv_algorithm,
    get_num_threads,
    set_conv_algorithm,
    set_num_threads,
    show_config,
    use_backend,
)


def get_include() -> str:
    """Directory holding the C++ headers (``#include <aekernels/conv.hpp>`` etc.).

    Returns
    -------
    str
        Pass it to ``include_dirs`` of an extension that uses the headers.
    """
    here = _os.path.dirname(_os.path.abspath(__file__))
    packaged = _os.path.join(here, "include")
    if _os.path.isdir(packaged):
        return packaged
    return _os.path.join(_os.path.dirname(here), "csrc")  # editable / source checkout


backend()  # choose now, so a fallback warning appears at import, not at the first call

__all__ = [
    "__version__", "available_backends", "avg_pool2d", "avg_pool2d_backward", "backend",
    "conv2d", "conv2d_backward_bias", "conv2d_backward_filter", "conv2d_backward_input",
    "conv_transpose2d", "get_conv_algorithm", "get_include", "get_num_threads", "max_pool2d",
    "max_pool2d_backward", "max_unpool2d", "max_unpool2d_backward", "set_conv_algorithm",
    "set_num_threads", "show_config", "upsample_nearest2d", "upsample_nearest2d_backward",
    "use_backend",
]
