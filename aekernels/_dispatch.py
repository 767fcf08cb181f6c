"""Backend selection, thread control and configuration report.

A *backend* is a namespace of low-level kernels.  ``aekernels._api`` validates every
argument, resolves padding, computes and allocates every output, and only then calls
one of these functions.  So a backend kernel may assume:

* every array is a C-contiguous, aligned, native-endian ``numpy.ndarray`` of rank 4;
  the float arrays of one call share one dtype (float32 or float64); ``indices`` are
  int64; output arrays are writeable and do not overlap inputs;
* ``nhwc`` is a bool: ``False`` -> data (N, C, H, W), conv weight OIHW (K, C/g, kh, kw);
  ``True`` -> data (N, H, W, C), conv weight HWIO (kh, kw, C/g, K);
* every int parameter is a validated Python int (strides/dilations/kernels >= 1,
  paddings >= 0, sizes < 2**31, element counts < 2**62); spatial output sizes come
  from the output array's shape; the bottom/right padding is implied by them
  (it is passed explicitly only where a kernel needs it: average pooling's divisor);
* the kernel overwrites *every* element of its output (never assumes zeroed memory).

Kernels release the GIL (native) and must be deterministic for a given thread count.
Native code re-checks the sizes it relies on (defence in depth) and raises
ValueError instead of touching memory out of bounds.

The kernels each backend provides (x: input, y: output, g*: gradients)::

  conv2d_forward(x, w, bias|None, y, sh, sw, pt, pl, dh, dw, groups, nhwc)
      y[n,k,oh,ow] = bias[k] + sum_{c,i,j} x[n, g*Cg + c, oh*sh - pt + i*dh,
                     ow*sw - pl + j*dw] * w[k, c, i, j]   (x outside the image = 0;
                     g = k // (K/groups), Cg = C/groups)
  conv2d_backward_input(gy, w, gx, sh, sw, pt, pl, dh, dw, groups, nhwc)
      gx = adjoint of conv2d_forward in x (bias-free); gx's shape gives (N, C, H, W)
  conv_transpose2d_forward(x, w, bias|None, y, sh, sw, pt, pl, dh, dw, groups, nhwc)
      y = conv2d_backward_input(x, w, y, ...) + bias[c] (the transposed conv)
  conv2d_backward_filter(x, gy, gw, sh, sw, pt, pl, dh, dw, groups, nhwc)
      gw[k,c,i,j] = sum_{n,oh,ow} gy[n,k,oh,ow] * x[n, g*Cg+c, oh*sh-pt+i*dh, ow*sw-pl+j*dw]
  conv2d_backward_bias(gy, gb, nhwc)              gb: rank 1 (K,); sum over n, oh, ow
  max_pool2d_forward(x, y, indices|None, kh, kw, sh, sw, pt, pl, dh, dw, nhwc)
      max over window positions inside the image (padding never wins), scanned in
      row-major (i, then j) order; a strictly greater value or the first NaN replaces
      the current one, so ties keep the first maximum and a NaN wins; the initial
      index is the first in-image position.  indices = h * W + w within the (n, c) plane.
  max_pool2d_backward(gy, indices, gx, nhwc)
      gx = 0; gx[n, c].flat[indices[n,c,oh,ow]] += gy[n,c,oh,ow] in row-major (oh, ow) order
  avg_pool2d_forward(x, y, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw,
                     count_include_pad, divisor_override, nhwc)
      sum over in-image window positions / divisor, where divisor = divisor_override if
      > 0, else (count_include_pad ? number of window positions inside the padded image
      [-pt, H+pb) x [-pl, W+pr) : number inside the image).  Both counts factor as
      rows * cols.  _api guarantees every window holds >= 1 in-image position.
  avg_pool2d_backward(gy, gx, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw,
                      count_include_pad, divisor_override, nhwc)
      adjoint of avg_pool2d_forward
  max_unpool2d_forward(x, indices, y, nhwc)
      y = 0; y[n, c].flat[indices[n,c,h,w]] = x[n,c,h,w] in row-major (h, w) order,
      so with duplicate indices the last write wins
  max_unpool2d_backward(gy, indices, gx, nhwc)
      gx[n,c,h,w] = gy[n, c].flat[indices[n,c,h,w]]
  upsample_nearest2d_forward(x, y, fh, fw, nhwc)     y[.., h, w] = x[.., h // fh, w // fw]
  upsample_nearest2d_backward(gy, gx, fh, fw, nhwc)  adjoint of the above
  set_num_threads(n), get_num_threads()
  (native conv module only) set_winograd(on), get_winograd(): see set_conv_algorithm

(For NHWC read x[n, c, h, w] as x[n, h, w, c] and w[k, c, i, j] as w[i, j, c, k].)
Pooling indices are validated in _api (0 <= index < plane size) before a kernel runs;
kernels still refuse out-of-range indices with ValueError rather than write outside.
A backend may also provide ``indices_below(indices, bound) -> bool`` (every index, read
as unsigned, < bound) for that check; the native one does (threaded), otherwise _api
uses one NumPy pass.

The native backend is ``aekernels._native`` (pybind11, conv kernels) plus
``aekernels._pool`` (Cython, pooling/unpooling/upsampling); the numba backend is
``aekernels._numba``.
"""
from __future__ import annotations

import contextlib
import os
import platform
import sys
import types
import warnings
from typing import Iterator

BACKEND_NAMES = ("native", "numba")

KERNEL_NAMES = (
    "conv2d_forward", "conv2d_backward_input", "conv_transpose2d_forward",
    "conv2d_backward_filter", "conv2d_backward_bias",
    "max_pool2d_forward", "max_pool2d_backward",
    "avg_pool2d_forward", "avg_pool2d_backward",
    "max_unpool2d_forward", "max_unpool2d_backward",
    "upsample_nearest2d_forward", "upsample_nearest2d_backward",
)

_loaded: dict[str, types.SimpleNamespace] = {}
_load_errors: dict[str, str] = {}
_current: str | None = None
_num_threads: int | None = None
CONV_ALGORITHMS = ("direct", "winograd")
_conv_algorithm: str | None = None  # chosen at first use: AEKERNELS_CONV_ALGORITHM or "direct"


def _load_native() -> types.SimpleNamespace:
    from . import _native, _pool  # noqa: F401  (ImportError explains what is missing)

    ns = types.SimpleNamespace()
    for name in KERNEL_NAMES:
        module = _native if name.startswith("conv") else _pool
        setattr(ns, name, getattr(module, name))
    ns.indices_below = _pool.indices_below
    ns.modules = (_native, _pool)
    return ns


def _numba_cache_dir() -> None:
    """Point numba's on-disk cache at a writable place when site-packages is read-only."""
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_numba")
    if os.access(here, os.W_OK):
        return  # numba's default (__pycache__ beside the sources) works
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(base, "aekernels", "numba")
    if "numba" in sys.modules:  # numba read its config at import: tell it now
        import numba.core.config as config
        config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]


def _load_numba() -> types.SimpleNamespace:
    _numba_cache_dir()
    from . import _numba

    ns = types.SimpleNamespace(**{name: getattr(_numba, name) for name in KERNEL_NAMES})
    ns.modules = (_numba,)
    return ns


_LOADERS = {"native": _load_native, "numba": _load_numba}


def _get(name: str) -> types.SimpleNamespace | None:
    """Load backend ``name`` once; remember why it failed if it does."""
    if name in _loaded:
        return _loaded[name]
    if name in _load_errors:
        return None
    try:
        ns = _LOADERS[name]()
    except Exception as exc:  # a broken build must not break `import aekernels`
        _load_errors[name] = f"{type(exc).__name__}: {exc}"
        return None
    _loaded[name] = ns
    if _num_threads is not None:
        for module in ns.modules:
            module.set_num_threads(_num_threads)
    _apply_conv_algorithm(ns)
    return ns


def available_backends() -> tuple[str, ...]:
    """Names of the backends that load on this machine, fastest first.

    Returns
    -------
    tuple of str
        A subset of ``("native", "numba")``.
    """
    return tuple(name for name in BACKEND_NAMES if _get(name) is not None)


def _one_of(value: object, choices: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``choices``, else a ValueError naming ``what``."""
    if value not in choices:
        raise ValueError(f"{what} must be one of {choices}, got {value!r}")
    return value  # type: ignore[return-value]


def _select_initial() -> str:
    requested = os.environ.get("AEKERNELS_BACKEND", "").strip().lower()
    if requested:
        _one_of(requested, BACKEND_NAMES, "backend")
        if _get(requested) is None:
            raise ImportError(
                f"AEKERNELS_BACKEND={requested} but that backend failed to load: "
                f"{_load_errors[requested]}")
        return requested
    if _get("native") is not None:
        return "native"
    warnings.warn(
        f"aekernels: native extension unavailable ({_load_errors['native']}); "
        "using the numba backend", RuntimeWarning, stacklevel=3)
    return "numba"


def backend() -> str:
    """Name of the backend the kernels currently run on.

    Returns
    -------
    str
        ``"native"`` or ``"numba"``.
    """
    global _current
    if _current is None:
        _current = _select_initial()
    return _current


def kernels() -> types.SimpleNamespace:
    """The namespace of kernels of the current backend (used by ``_api``)."""
    ns = _get(backend())
    assert ns is not None
    return ns


def index_check():
    """The current backend's pooling-index range check ``indices_below``, or None (then
    ``_api`` uses NumPy)."""
    return getattr(kernels(), "indices_below", None)


class use_backend(contextlib.ContextDecorator):
    """Switch backend, for a ``with`` block or (called plainly) from now on.

    Parameters
    ----------
    name : {"native", "numba"}
        Backend to use.

    Raises
    ------
    ValueError
        If ``name`` is not a backend name.
    RuntimeError
        If that backend failed to load (the message says why).

    Examples
    --------
    >>> with aekernels.use_backend("numba"):
    ...     y = aekernels.conv2d(x, w)
    """

    def __init__(self, name: str) -> None:
        global _current
        _one_of(name, BACKEND_NAMES, "backend")
        if _get(name) is None:
            raise RuntimeError(f"backend {name!r} is unavailable: {_load_errors[name]}")
        self._previous = backend()
        self.name = name
        _current = name

    def __enter__(self) -> "use_backend":
        global _current
        _current = self.name
        return self

    def __exit__(self, *exc: object) -> None:
        global _current
        _current = self._previous


def set_num_threads(n: int) -> None:
    """Set the number of threads every backend's kernels use.

    Parameters
    ----------
    n : int
        Number of threads, >= 1.  The default is OMP_NUM_THREADS if set, else all cores.
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    _num_threads = n
    for ns in _loaded.values():
        for module in ns.modules:
            module.set_num_threads(n)


def get_num_threads() -> int:
    """Number of threads the kernels of the current backend use.

    Returns
    -------
    int
    """
    return int(kernels().modules[0].get_num_threads())


def _apply_conv_algorithm(ns: types.SimpleNamespace) -> None:
    for module in ns.modules:
        if hasattr(module, "set_winograd"):  # the native conv module; numba has no Winograd
            module.set_winograd(get_conv_algorithm() == "winograd")


def set_conv_algorithm(name: str) -> None:
    """Choose how the native backend computes fp32 3x3 stride-1 convolutions.

    Parameters
    ----------
    name : {"direct", "winograd"}
        ``"direct"`` (the default) sums every product ``x * w`` in fp32: each output
        is within ``2 * K * 2**-24 * sum|x * w|`` of the exact result.  ``"winograd"``
        lets fp32 convs with a 3x3 kernel, stride 1, dilation 1, groups 1 and 16-256
        channels (8-256 on AVX2) on both sides run on Winograd F(2x2, 3x3) -- forward,
        backward-input and conv_transpose2d; backward-filter and float64 stay direct.
        It does 2.25x fewer multiplications (1.3-1.6x faster on those layers) but adds
        and subtracts neighbouring inputs before multiplying, so its error scales with
        the magnitudes of the whole 4x4 input tile: fine for training on normalised
        data, not a per-output guarantee when large and small values mix.  The
        environment variable ``AEKERNELS_CONV_ALGORITHM`` sets the initial choice.
        Process-wide; the numba backend always computes directly.
    """
    global _conv_algorithm
    _conv_algorithm = _one_of(name, CONV_ALGORITHMS, "set_conv_algorithm: name")
    for ns in _loaded.values():
        _apply_conv_algorithm(ns)


def get_conv_algorithm() -> str:
    """The algorithm chosen by ``set_conv_algorithm`` ("direct" or "winograd")."""
    global _conv_algorithm
    if _conv_algorithm is None:
        env = os.environ.get("AEKERNELS_CONV_ALGORITHM", "").strip().lower() or "direct"
        _conv_algorithm = _one_of(env, CONV_ALGORITHMS, "AEKERNELS_CONV_ALGORITHM")
    return _conv_algorithm


def isa() -> str:
    """Instruction-set path of the native conv kernels ("avx512", "avx2", "generic")."""
    ns = _get("native")
    if ns is None:
        return "n/a (native backend unavailable)"
    native = ns.modules[0]
    return native.isa() if hasattr(native, "isa") else "generic"


def show_config(file=None) -> None:
    """Print versions, the active backend, ISA path, threads and load errors.

    Parameters
    ----------
    file : file-like, optional
        Where to print; defaults to ``sys.stdout``.
    """
    import numpy

    from . import __version__

    file = file or sys.stdout
    lines = [
        f"aekernels {__version__}",
        f"python    {platform.python_version()} ({sys.executable})",
        f"numpy     {numpy.__version__}",
    ]
    try:
        import numba
        lines.append(f"numba     {numba.__version__}")
    except Exception as exc:  # pragma: no cover - numba is a hard dependency
        lines.append(f"numba     unavailable ({exc})")
    lines += [
        f"backend   {backend()}",
        f"available {', '.join(available_backends())}",
        f"isa       {isa()}",
        f"threads   {get_num_threads()}",
        f"conv algo {get_conv_algorithm()}",
        f"machine   {platform.machine()} {_cpu_model()}",
    ]
    for name, err in _load_errors.items():
        lines.append(f"note      backend {name} failed to load: {err}")
    print("\n".join(lines), file=file)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
