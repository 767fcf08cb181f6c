"""``aekernels bench``: time the kernels against PyTorch on the DESIGN.md shapes.

This module is the one place the benchmark cases live.  The pytest-benchmark suite
(``pytest bench/ --benchmark-only``) imports ``cases()`` and ``prepare()`` from here, and
the ``aekernels bench`` command runs the same cases in one process::

    aekernels bench [--quick] [--compare torch] [--json FILE] [--plot FILE.png]
                    [--markdown FILE.md] [--backend native|numba|native,numba]
                    [--threads N] [--cases PATTERN[,PATTERN...]]

Timing: every implementation of a case (aekernels on each requested backend, and
PyTorch) is warmed up, then they run in alternating short blocks of calls until the
case's time budget is spent (at least ``min_repeats`` calls each); the median call time
of each is reported (the minimum is kept in the JSON too).  Alternating keeps the ratio
honest on a shared machine: a burst of load from a neighbour slows both sides alike.

Units: conv GF/s = 2 * forward output elements * C_in/groups * kh * kw / time, for all
four directions (they do the same multiply-adds); pooling GB/s = bytes read + written
(the arrays each call must touch once, int64 indices included) / time.

The same run measures the ceilings issue 4 refers to: a numpy float32 GEMM of the size
of the implicit GEMM of resnet3x3 and vgg3x3 (BLAS limited to the benchmark's thread
count), and a memory copy bandwidth (numpy, one thread; torch, all threads).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

# ---------------------------------------------------------------------------------
# the cases (DESIGN.md)


@dataclass(frozen=True)
class ConvShape:
    """A forward conv: x (n, c, h, w) * weight (k, c, kh, kw) -> y (n, k, oh, ow)."""
    name: str
    n: int
    c: int
    h: int
    w: int
    k: int
    kh: int
    kw: int
    stride: int
    pad: int          # symmetric; DESIGN's "valid" is 0

    @property
    def oh(self) -> int:
        return (self.h + 2 * self.pad - self.kh) // self.stride + 1

    @property
    def ow(self) -> int:
        return (self.w + 2 * self.pad - self.kw) // self.stride + 1

    @property
    def flops(self) -> int:
        return 2 * self.n * self.k * self.oh * self.ow * self.c * self.kh * self.kw

    @property
    def gemm_mnk(self) -> tuple[int, int, int]:
        """(M, N, K) of the implicit GEMM: K_out x (N*OH*OW) x (C*kh*kw)."""
        return self.k, self.n * self.oh * self.ow, self.c * self.kh * self.kw

    def describe(self) -> str:
        return (f"({self.n},{self.c},{self.h}x{self.w},{self.k},{self.kh},"
                f"{self.stride},{self.pad})")


CONV_SHAPES: tuple[ConvShape, ...] = (
    ConvShape("lenet_c1", 64, 1, 32, 32, 6, 5, 5, 1, 0),
    ConvShape("lenet_c3", 64, 6, 14, 14, 16, 5, 5, 1, 0),
    ConvShape("ae_enc1", 128, 1, 28, 28, 32, 3, 3, 1, 1),
    ConvShape("ae_enc2", 128, 32, 14, 14, 64, 3, 3, 1, 1),
    ConvShape("resnet3x3", 8, 64, 56, 56, 64, 3, 3, 1, 1),
    ConvShape("vgg3x3", 4, 128, 28, 28, 128, 3, 3, 1, 1),
    ConvShape("pw1x1", 8, 256, 14, 14, 256, 1, 1, 1, 0),
    ConvShape("stem_s2", 8, 3, 112, 112, 32, 3, 3, 2, 1),
    ConvShape("seed_tf_ae", 16, 1, 145, 145, 32, 4, 4, 1, 0),
)

CONV_KERNELS = ("forward", "backward_input", "backward_filter", "conv_transpose2d")


@dataclass(frozen=True)
class PoolShape:
    """Pooling of x (n, c, h, w) with a k x k window, stride s, padding p."""
    name: str
    n: int
    c: int
    h: int
    w: int
    k: int
    stride: int
    pad: int

    @property
    def oh(self) -> int:
        return (self.h + 2 * self.pad - self.k) // self.stride + 1

    @property
    def ow(self) -> int:
        return (self.w + 2 * self.pad - self.k) // self.stride + 1

    def describe(self) -> str:
        return f"({self.n},{self.c},{self.h},{self.w}) k{self.k} s{self.stride} p{self.pad}"


POOL_SHAPES: tuple[PoolShape, ...] = (
    PoolShape("pool2x2", 128, 32, 28, 28, 2, 2, 0),
    PoolShape("pool3x3s2", 8, 64, 112, 112, 3, 2, 1),
)

POOL_KERNELS = ("max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
                "max_unpool2d")

IMPLEMENTATIONS = ("native", "numba", "torch")   # what the pytest suite times
LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32", "float64")

# The small-channel directions of issue 4 that must reach <= 0.33 (fp32 NCHW).
# "all directions" of ae_enc1 / seed_tf_ae is read as including conv_transpose2d
# (it is backward-input by another name); the others are exactly as listed.
_SMALL_CHANNEL = {
    ("ae_enc1", k) for k in CONV_KERNELS} | {("seed_tf_ae", k) for k in CONV_KERNELS} | {
    ("lenet_c1", "backward_input"), ("lenet_c1", "backward_filter"),
    ("stem_s2", "backward_input")}
_GEMM_BOUND = {("resnet3x3", "forward"), ("vgg3x3", "forward")}
GEMM_FRACTION = 0.9      # of the numpy GEMM GF/s, for _GEMM_BOUND
VARIANT_SLACK = 1.5      # fp64 / NHWC ratio may be this times the fp32 NCHW ratio


@dataclass(frozen=True)
class Case:
    """One benchmark case: a kernel on a shape, in one layout and dtype."""
    family: str       # "conv" or "pool"
    shape: str        # ConvShape/PoolShape name
    kernel: str
    layout: str
    dtype: str

    @property
    def id(self) -> str:
        return f"{self.family}/{self.shape}/{self.kernel}/{self.layout}/{self.dtype}"

    @property
    def spec(self) -> ConvShape | PoolShape:
        table = _CONV_BY_NAME if self.family == "conv" else _POOL_BY_NAME
        return table[self.shape]


_CONV_BY_NAME = {s.name: s for s in CONV_SHAPES}
_POOL_BY_NAME = {s.name: s for s in POOL_SHAPES}


def cases(layouts: Iterable[str] = LAYOUTS, dtypes: Iterable[str] = DTYPES,
          patterns: Sequence[str] | None = None) -> list[Case]:
    """Every benchmark case, conv first, optionally filtered.

    Parameters
    ----------
    layouts, dtypes
        Subsets of ``LAYOUTS`` / ``DTYPES``.
    patterns
        Keep a case if its id (``family/shape/kernel/layout/dtype``) contains one of
        these strings or matches one as a glob (``conv/*/forward/*``).
    """
    layouts, dtypes = tuple(layouts), tuple(dtypes)
    out = [Case("conv", s.name, k, lay, dt)
           for s in CONV_SHAPES for k in CONV_KERNELS for dt in dtypes for lay in layouts]
    out += [Case("pool", s.name, k, lay, dt)
            for s in POOL_SHAPES for k in POOL_KERNELS for dt in dtypes for lay in layouts]
    if patterns:
        out = [c for c in out if any(p in c.id or fnmatch.fnmatchcase(c.id, p)
                                     for p in patterns)]
    return out


# ---------------------------------------------------------------------------------
# preparing a case: inputs and one zero-argument callable per implementation


@dataclass
class Prepared:
    """The callables of one case and the work one call does."""
    case: Case
    aek: Callable[[], Any]                   # aekernels on the current backend
    torch: Callable[[], Any] | None          # PyTorch equivalent, if requested
    work: float                              # FLOPs (conv) or bytes (pool)
    unit: str                                # "GF/s" or "GB/s"

    def rate(self, seconds: float) -> float:
        return self.work / seconds / 1e9


def _nhwc(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _torch_tensor(a: np.ndarray, torch: Any, channels_last: bool) -> Any:
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


def prepare(case: Case, torch: Any = None, seed: int = 0) -> Prepared:
    """Build the inputs of ``case`` and the callables that run it.

    Parameters
    ----------
    case : Case
    torch : module, optional
        The ``torch`` module: also build the PyTorch equivalent (NHWC as channels_last).
    seed : int
    """
    import aekernels as ak

    rng = np.random.default_rng(seed)
    dtype = np.dtype(case.dtype)
    nhwc = case.layout == "NHWC"

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)

    def data(a: np.ndarray) -> np.ndarray:      # NCHW array -> the case's layout
        return _nhwc(a) if nhwc else a

    if case.family == "conv":
        return _prepare_conv(case, case.spec, ak, torch, rand, data, nhwc)
    return _prepare_pool(case, case.spec, ak, torch, rand, data, nhwc)


def _prepare_conv(case: Case, s: ConvShape, ak: Any, torch: Any, rand: Callable,
                  data: Callable, nhwc: bool) -> Prepared:
    x0, w0, gy0 = rand(s.n, s.c, s.h, s.w), rand(s.k, s.c, s.kh, s.kw), rand(s.n, s.k, s.oh, s.ow)
    x, gy = data(x0), data(gy0)
    w = np.ascontiguousarray(w0.transpose(2, 3, 1, 0)) if nhwc else w0   # HWIO / OIHW
    st, pad, lay = s.stride, s.pad, case.layout
    calls = {
        "forward": lambda: ak.conv2d(x, w, stride=st, padding=pad, layout=lay),
        "backward_input": lambda: ak.conv2d_backward_input(gy, w, x.shape, stride=st,
                                                           padding=pad, layout=lay),
        "backward_filter": lambda: ak.conv2d_backward_filter(x, gy, w.shape, stride=st,
                                                             padding=pad, layout=lay),
        "conv_transpose2d": lambda: ak.conv_transpose2d(gy, w, stride=st, padding=pad,
                                                        output_size=(s.h, s.w), layout=lay),
    }
    tfn = None
    if torch is not None:
        F = torch.nn.functional
        xt, wt, gyt = (_torch_tensor(a, torch, nhwc) for a in (x0, w0, gy0))
        out_pad = s.h - ((s.oh - 1) * st - 2 * pad + s.kh)
        cb = torch.ops.aten.convolution_backward
        args = ([st, st], [pad, pad], [1, 1], False, [0, 0], 1)
        tcalls = {
            "forward": lambda: F.conv2d(xt, wt, stride=st, padding=pad),
            # what autograd runs for each gradient on its own (cf. torch.nn.grad)
            "backward_input": lambda: cb(gyt, xt, wt, None, *args, [True, False, False])[0],
            "backward_filter": lambda: cb(gyt, xt, wt, None, *args, [False, True, False])[1],
            "conv_transpose2d": lambda: F.conv_transpose2d(gyt, wt, stride=st, padding=pad,
                                                           output_padding=out_pad),
        }
        tfn = tcalls[case.kernel]
    return Prepared(case, calls[case.kernel], tfn, float(s.flops), "GF/s")


def _prepare_pool(case: Case, s: PoolShape, ak: Any, torch: Any, rand: Callable,
                  data: Callable, nhwc: bool) -> Prepared:
    x0, gy0 = rand(s.n, s.c, s.h, s.w), rand(s.n, s.c, s.oh, s.ow)
    x, gy = data(x0), data(gy0)
    k, st, pad, lay = s.k, s.stride, s.pad, case.layout
    y, idx = ak.max_pool2d(x, k, st, pad, return_indices=True, layout=lay)
    calls = {
        "max_pool2d": lambda: ak.max_pool2d(x, k, st, pad, return_indices=True, layout=lay),
        "max_pool2d_backward": lambda: ak.max_pool2d_backward(gy, idx, x.shape, layout=lay),
        "avg_pool2d": lambda: ak.avg_pool2d(x, k, st, pad, layout=lay),
        "avg_pool2d_backward": lambda: ak.avg_pool2d_backward(gy, x.shape, k, st, pad,
                                                              layout=lay),
        "max_unpool2d": lambda: ak.max_unpool2d(y, idx, k, st, pad, output_size=(s.h, s.w),
                                                layout=lay),
    }
    isz = x.itemsize
    big, small = s.n * s.c * s.h * s.w, s.n * s.c * s.oh * s.ow
    work = {   # bytes each call must read + write once
        "max_pool2d": big * isz + small * (isz + 8),
        "max_pool2d_backward": small * (isz + 8) + big * isz,
        "avg_pool2d": (big + small) * isz,
        "avg_pool2d_backward": (big + small) * isz,
        "max_unpool2d": small * (isz + 8) + big * isz,
    }[case.kernel]
    tfn = None
    if torch is not None:
        F = torch.nn.functional
        aten = torch.ops.aten
        xt, gyt = _torch_tensor(x0, torch, nhwc), _torch_tensor(gy0, torch, nhwc)
        yt, it = F.max_pool2d(xt, k, st, pad, return_indices=True)
        kk, ss, pp = [k, k], [st, st], [pad, pad]
        tcalls = {
            "max_pool2d": lambda: F.max_pool2d(xt, k, st, pad, return_indices=True),
            "max_pool2d_backward": lambda: aten.max_pool2d_with_indices_backward(
                gyt, xt, kk, ss, pp, [1, 1], False, it),
            "avg_pool2d": lambda: F.avg_pool2d(xt, k, st, pad),
            "avg_pool2d_backward": lambda: aten.avg_pool2d_backward(
                gyt, xt, kk, ss, pp, False, True, None),
            "max_unpool2d": lambda: F.max_unpool2d(yt, it, k, st, pad, output_size=(s.h, s.w)),
        }
        tfn = tcalls[case.kernel]
    return Prepared(case, calls[case.kernel], tfn, float(work), "GB/s")


# ---------------------------------------------------------------------------------
# timing


@dataclass(frozen=True)
class Budget:
    seconds: float = 1.0       # per case, all implementations together
    warmup: int = 2            # calls of each implementation before timing
    min_repeats: int = 5
    max_repeats: int = 200


FULL = Budget(max_repeats=500)
QUICK = Budget(seconds=0.25, warmup=1, min_repeats=3, max_repeats=40)


def time_alternating(fns: dict[str, Callable[[], Any]], budget: Budget) -> dict[str, list[float]]:
    """Seconds per call of each function, timed in alternating blocks.

    Each round runs a short block of calls of every function in turn (about a fifth of
    the budget, or of ``max_repeats``, per round), so a burst of load from a neighbour
    hits all of them alike.
    A block of a fast function (< 20 ms a call) starts with one untimed call: the
    previous library's OpenMP threads spin for a while after its parallel region and
    would otherwise be charged to this one (aekernels and PyTorch have separate pools).
    """
    clock = time.perf_counter
    for fn in fns.values():
        for _ in range(budget.warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    rounds = 5
    block = budget.seconds / (rounds * len(fns))
    per_block = -(-budget.max_repeats // rounds)   # so fast kernels still alternate
    end = clock() + budget.seconds
    while True:
        for name, fn in fns.items():
            ts = times[name]
            if len(ts) >= budget.max_repeats:
                continue
            if not ts or ts[-1] < 0.02:
                fn()
            block_end = clock() + block
            stop = min(budget.max_repeats, len(ts) + per_block)
            while len(ts) < stop:
                t0 = clock()
                fn()
                t1 = clock()
                ts.append(t1 - t0)
                if t1 >= block_end:
                    break
        counts = [len(ts) for ts in times.values()]
        if min(counts) >= budget.max_repeats:
            break
        if min(counts) >= budget.min_repeats and clock() >= end:
            break
    return times


# ---------------------------------------------------------------------------------
# ceilings


def _blas_limits(threads: int) -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def gemm_callable(m: int, n: int, k: int) -> Callable[[], Any]:
    """A numpy float32 (m, k) @ (k, n) product into a preallocated result."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.empty((m, n), np.float32)
    return lambda: np.matmul(a, b, out=c)


def gemm_gflops(m: int, n: int, k: int, budget: Budget) -> float:
    """GF/s of a numpy float32 (m, k) @ (k, n) product (median time)."""
    t = statistics.median(time_alternating({"gemm": gemm_callable(m, n, k)}, budget)["gemm"])
    return 2.0 * m * n * k / t / 1e9


def copy_gbps(torch: Any, budget: Budget, nbytes: int = 64 << 20) -> dict[str, float]:
    """Memory copy bandwidth (bytes read + written / s) of numpy, and of torch if given."""
    src = np.random.default_rng(2).standard_normal(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    fns: dict[str, Callable[[], Any]] = {"numpy": lambda: np.copyto(dst, src)}
    if torch is not None:
        ts, td = torch.from_numpy(src), torch.empty(src.shape, dtype=torch.float32)
        fns["torch"] = lambda: td.copy_(ts)
    times = time_alternating(fns, budget)
    return {name: 2.0 * src.nbytes / statistics.median(t) / 1e9 for name, t in times.items()}


# ---------------------------------------------------------------------------------
# targets (issue 4)


def base_target(case: Case) -> tuple[str, float] | None:
    """The ratio issue 4 asks of a fp32 case that has its own target.

    Returns ("ratio", r): aekernels time / torch time <= r; None for cases whose target is
    relative to another case (fp64; NHWC conv), see ``evaluate``.
    """
    if case.dtype != "float32":
        return None
    if case.family == "conv":
        if case.layout != "NCHW":
            return None
        if (case.shape, case.kernel) in _SMALL_CHANNEL:
            return "ratio", 0.33
        if (case.shape, case.kernel) == ("lenet_c1", "forward"):
            return "ratio", 0.5
        return "ratio", 1.0
    if case.layout == "NCHW" and case.kernel == "max_pool2d":
        return "ratio", 0.2
    if case.layout == "NCHW" and case.kernel == "avg_pool2d":
        return "ratio", 0.5
    return "ratio", 1.0


def _base_of(case: Case) -> Case:
    """The fp32 case whose ratio an fp64 / NHWC case is held to (x VARIANT_SLACK)."""
    layout = "NCHW" if case.family == "conv" else case.layout
    return Case(case.family, case.shape, case.kernel, layout, "float32")


def evaluate(rows: list[dict], gemm: dict[str, float], copy: float | None = None) -> None:
    """Fill each native row's ``target`` (max ratio) and ``met`` (True/False/None) in place.

    ``copy``: measured copy bandwidth (GB/s); pooling rows then note their fraction of it.
    """
    by_id = {(r["backend"], r["id"]): r for r in rows}
    for r in rows:
        r["target"], r["met"], r["note"], r["min_rate"] = None, None, "", None
        if r["unit"] == "GB/s" and copy:
            r["note"] = f"{r['rate'] / copy:.0%} of copy bw"
        if r["backend"] != "native" or r.get("ratio") is None:
            continue
        case = Case(**{k: r[k] for k in ("family", "shape", "kernel", "layout", "dtype")})
        bt = base_target(case)
        if bt is not None:
            r["target"] = bt[1]
        else:
            base = by_id.get(("native", _base_of(case).id))
            if base is None or base.get("ratio") is None:
                r["note"] = "; ".join(filter(None, [r["note"], "base fp32 case not run"]))
                continue
            r["target"] = round(VARIANT_SLACK * base["ratio"], 3)
            r["note"] = "; ".join(filter(None, [r["note"],
                                                f"{VARIANT_SLACK}x fp32 {_base_of(case).layout}"]))
        r["met"] = r["ratio"] <= r["target"]
        ceiling = r.get("gemm_rate") or gemm.get(case.shape)
        if bt is not None and (case.shape, case.kernel) in _GEMM_BOUND and ceiling:
            need = GEMM_FRACTION * ceiling
            r["min_rate"] = need
            r["note"] = f"needs >= {need:.0f} GF/s ({GEMM_FRACTION:.0%} numpy GEMM)"
            r["met"] = r["met"] and r["rate"] >= need


def _met_by_min(row: dict) -> bool:
    """The row's target judged on minimum instead of median times (a noisy-machine hint)."""
    if row.get("target") is None or row.get("ratio_min") is None:
        return False
    ok = row["ratio_min"] <= row["target"]
    if row.get("min_rate") is not None:
        ok = ok and row["work"] / row["min_ms"] / 1e6 >= row["min_rate"]
    return ok


def numba_geomean(rows: list[dict]) -> float | None:
    """Geometric mean of numba time / native time over the cases run on both."""
    native = {r["id"]: r["ms"] for r in rows if r["backend"] == "native"}
    logs = [math.log(r["ms"] / native[r["id"]]) for r in rows
            if r["backend"] == "numba" and r["id"] in native]
    return math.exp(sum(logs) / len(logs)) if logs else None


# ---------------------------------------------------------------------------------
# the run


def machine_info(threads: int, torch: Any) -> dict[str, Any]:
    import aekernels as ak
    from aekernels import _dispatch

    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    isa_flags = [fl for fl in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw",
                               "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile")
                 if fl in flags]
    try:
        import numba
        numba_version = numba.__version__
    except Exception:  # pragma: no cover - numba is a dependency
        numba_version = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _dispatch._cpu_model(),
        "cores": os.cpu_count(),
        "cpu_isa_flags": isa_flags,
        "aekernels_isa": _dispatch.isa(),
        "conv_algorithm": _dispatch.get_conv_algorithm(),
        "isa_env": os.environ.get("AEKERNELS_ISA", ""),
        "threads": threads,
        "python": platform.python_version(),
        "aekernels": ak.__version__,
        "numpy": np.__version__,
        "numba": numba_version,
        "torch": getattr(torch, "__version__", None),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
    }


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return None


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _import_torch(required: bool) -> Any:
    try:
        import torch
    except ImportError as exc:
        if required:
            raise SystemExit(f"aekernels bench: --compare torch needs PyTorch ({exc}); "
                             "install it with pip install 'aekernels[torch]'") from None
        return None
    return torch


def run_cases(selected: Sequence[Case], backends: Sequence[str], torch: Any, budget: Budget,
              log: Callable[[str], None] = lambda s: None,
              progress: Callable[[list[dict]], None] = lambda rows: None) -> list[dict]:
    """Time every case on every backend (and torch), alternating; one row per backend.

    ``progress(rows)`` is called after each case (the run writes partial JSON with it, so
    a crash in a kernel does not lose the cases measured before).
    """
    import aekernels as ak

    rows: list[dict] = []
    for i, case in enumerate(selected, 1):
        prep = prepare(case, torch)
        fns: dict[str, Callable[[], Any]] = {}
        for b in backends:
            fns[b] = ak.use_backend(b)(prep.aek)     # switches only for the call
        if prep.torch is not None:
            fns["torch"] = prep.torch
        gemm_bound = ((case.shape, case.kernel) in _GEMM_BOUND and case.dtype == "float32"
                      and case.layout == "NCHW")
        checks = {b: _check(prep, fns[b]) if prep.torch is not None else None for b in backends}
        times = time_alternating(fns, budget)
        # Its ceiling in rounds of its own, right after: OpenBLAS's threads keep spinning
        # after each GEMM and took the cores from the kernels timed after it (the forward
        # rows read ~1.7-2x slower when the GEMM shared their rounds).
        gemm_rate = (gemm_gflops(*case.spec.gemm_mnk, budget) if gemm_bound else None)
        t_torch = statistics.median(times["torch"]) if "torch" in times else None
        tmin_torch = min(times["torch"]) if "torch" in times else None
        for b in backends:
            t = statistics.median(times[b])
            row = {**asdict(case), "id": case.id, "backend": b,
                   "shape_desc": case.spec.describe(), "unit": prep.unit, "work": prep.work,
                   "ms": t * 1e3, "min_ms": min(times[b]) * 1e3, "repeats": len(times[b]),
                   "rate": prep.rate(t),
                   "torch_ms": None if t_torch is None else t_torch * 1e3,
                   "torch_rate": None if t_torch is None else prep.rate(t_torch),
                   "ratio": None if t_torch is None else t / t_torch,
                   "torch_min_ms": None if tmin_torch is None else tmin_torch * 1e3,
                   "ratio_min": None if tmin_torch is None else min(times[b]) / tmin_torch,
                   "torch_repeats": len(times["torch"]) if "torch" in times else None,
                   "gemm_rate": gemm_rate, "check": checks[b]}
            rows.append(row)
        last = rows[-1]
        log(f"[{i}/{len(selected)}] {case.id}: " + ", ".join(
            f"{r['backend']} {r['ms']:.3f} ms" for r in rows[-len(backends):])
            + (f", torch {last['torch_ms']:.3f} ms" if t_torch is not None else ""))
        del prep, fns
        progress(rows)
    return rows


def _check(prep: Prepared, aek: Callable[[], Any]) -> str:
    """"ok", or how the result of ``aek`` (aekernels on some backend) differs from
    PyTorch's: the bench must compare like with like (same op, same layout)."""
    case = prep.case
    ours, theirs = aek(), prep.torch()
    if not isinstance(ours, tuple):
        ours, theirs = (ours,), (theirs,)
    tol = 1e-4 if case.dtype == "float32" else 1e-10
    for a, t in zip(ours, theirs):
        t = t.contiguous().numpy()   # logical NCHW (channels_last is only a memory format)
        if case.layout == "NHWC":
            weight = case.kernel == "backward_filter"
            t = t.transpose((2, 3, 1, 0) if weight else (0, 2, 3, 1))
        if a.shape != t.shape:
            return f"shape {a.shape} != torch {t.shape}"
        if a.dtype.kind == "i":
            if not np.array_equal(a, t):
                return f"indices differ at {int(np.count_nonzero(a != t))} positions"
            continue
        scale = float(np.max(np.abs(t))) or 1.0
        err = float(np.max(np.abs(a - t))) / scale
        if not err <= tol:
            return f"max rel err {err:.1e}"
    return "ok"


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table_lines(rows: list[dict], markdown: bool = False) -> list[str]:
    """The results table (plain text or GitHub markdown)."""
    head = ["case", "shape", "kernel", "layout", "dtype", "backend", "aek ms", "torch ms",
            "ratio", "target", "met", "ratio(min)", "aek rate", "torch rate", "note"]
    body = []
    for r in rows:
        met = {True: "yes", False: "NO", None: "-"}[r.get("met")]
        body.append([r["shape"], r["shape_desc"], r["kernel"], r["layout"],
                     r["dtype"].replace("float", "fp"), r["backend"], _fmt(r["ms"], ".3f"),
                     _fmt(r["torch_ms"], ".3f"), _fmt(r["ratio"], ".2f"),
                     _fmt(r.get("target"), ".2f") if r.get("target") else "-", met,
                     _fmt(r.get("ratio_min"), ".2f"),
                     f"{r['rate']:.1f} {r['unit']}",
                     "-" if r["torch_rate"] is None else f"{r['torch_rate']:.1f} {r['unit']}",
                     r.get("note", "")])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return lines
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    fmt = lambda row: "  ".join(str(x).ljust(wd) for x, wd in zip(row, widths)).rstrip()  # noqa: E731
    return [fmt(head), fmt(["-" * wd for wd in widths])] + [fmt(row) for row in body]


def summary_lines(result: dict) -> list[str]:
    m, c = result["machine"], result["ceilings"]
    lines = [f"note: {result['note']}"] if result.get("note") else []
    lines += [f"machine: {m['cpu']}, {m['cores']} cores, CPU flags {' '.join(m['cpu_isa_flags'])}",
             f"aekernels {m['aekernels']} ISA path {m['aekernels_isa']}, conv algorithm "
             f"{m.get('conv_algorithm', 'direct')}, threads {m['threads']} "
             f"(torch {m['torch_threads']}); numpy {m['numpy']}, numba {m['numba']}, "
             f"torch {m['torch']}; {m['date']}"]
    for name, g in c.get("gemm_gflops", {}).items():
        mm, nn, kk = c["gemm_mnk"][name]
        lines.append(f"ceiling: numpy fp32 GEMM {mm}x{nn}x{kk} (as {name}): {g:.1f} GF/s")
    for name, g in c.get("copy_gbps", {}).items():
        lines.append(f"ceiling: {name} copy bandwidth: {g:.1f} GB/s (read + write)")
    load = m.get("loadavg_1min") or {}
    if load.get("start") is not None:
        # this process accounts for ~1 at the start and ~threads at the end
        busy = load["start"] > 1.5 or (load["end"] or 0) > m["threads"] + 1
        lines.append(f"load average (1 min) at start/end: {load['start']}/{load['end']}"
                     + (" -- other processes were running: absolute times are inflated, "
                        "ratios (alternating rounds) less so" if busy else ""))
    s = result["summary"]
    if s["targets"]:
        by_min = (f" ({s['met_by_min']}/{s['targets']} by minimum times)"
                  if s.get("met_by_min") is not None else "")
        lines.append(f"issue 4 targets met (median times): {s['met']}/{s['targets']} native "
                     f"rows{by_min}" + (f"; missed: {', '.join(s['missed'])}" if s["missed"]
                                        else ""))
    bad = [f"{r['id']}: {r['check']}" for r in result["results"]
           if r.get("check") not in (None, "ok")]
    if bad:
        lines.append("RESULTS DIFFER from PyTorch's (these timings compare different work): "
                     + "; ".join(bad))
    elif any(r.get("check") == "ok" for r in result["results"]):
        lines.append("every result was checked against PyTorch's before timing: all agree")
    if s["numba_geomean"] is not None:
        ok = "met" if s["numba_geomean"] <= 3.0 else "NOT met"
        lines.append(f"numba / native time, geometric mean over {s['numba_cases']} cases: "
                     f"{s['numba_geomean']:.2f}x (target <= 3x: {ok})")
    return lines


def plot(rows: list[dict], path: str, title: str) -> None:
    """A horizontal bar chart of the ratios (log scale), one bar per row with a ratio."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit(f"aekernels bench: --plot needs matplotlib ({exc}); "
                         "pip install matplotlib") from None
    data = [r for r in rows if r.get("ratio") is not None]
    if len({r["backend"] for r in data}) > 1:   # the numba rows are summarised, not drawn
        data = [r for r in data if r["backend"] == "native"]
    if not data:
        raise SystemExit("aekernels bench: --plot needs ratios: add --compare torch")
    labels = [f"{r['shape']} {r['kernel']} {r['layout']} {r['dtype'].replace('float', 'fp')}"
              + ("" if r["backend"] == "native" else f" [{r['backend']}]") for r in data]
    colors = ["tab:green" if r.get("met") else "tab:red" if r.get("met") is False
              else "tab:gray" for r in data]
    fig, ax = plt.subplots(figsize=(10, 0.2 * len(data) + 1.5))
    ypos = np.arange(len(data))
    ax.barh(ypos, [r["ratio"] for r in data], color=colors)
    targets = [(y, r["target"]) for y, r in zip(ypos, data) if r.get("target")]
    if targets:
        ax.scatter([t for _, t in targets], [y for y, _ in targets], marker="|", s=80,
                   color="black", label="issue 4 target", zorder=3)
        ax.legend(loc="lower right")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xscale("log")
    values = [r["ratio"] for r in data] + [t for _, t in targets] + [1.0]
    ax.set_xlim(min(values) / 1.6, max(values) * 1.6)
    for y, r in zip(ypos, data):
        ax.text(r["ratio"] * 1.03, y, f"{r['ratio']:.2f}", va="center", fontsize=5)
    ax.set_yticks(ypos, labels, fontsize=6)
    ax.set_ylim(len(data) - 0.5, -0.5)   # first case on top, no empty margin
    ax.set_xlabel("aekernels time / PyTorch time (lower is better; green = target met)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``aekernels bench`` (cli.py calls this for its subparser)."""
    p.add_argument("--quick", action="store_true",
                   help="fp32 NCHW only, shorter time budget (about 1-2 minutes)")
    p.add_argument("--compare", choices=["torch"], default=None,
                   help="time PyTorch side by side and report the ratios")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="bar chart of the ratios (matplotlib)")
    p.add_argument("--markdown", metavar="FILE.md", help="write the table as markdown")
    p.add_argument("--backend", default=None,
                   help="native, numba or both (native,numba); default: the current backend")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for aekernels, PyTorch and BLAS (default: all cores)")
    p.add_argument("--cases", default=None, metavar="PATTERN[,PATTERN]",
                   help="only case ids (family/shape/kernel/layout/dtype) containing or "
                        "glob-matching a pattern, e.g. 'conv/resnet3x3' or 'pool/*/NHWC/*'")
    p.add_argument("--layout", default=None, help="NCHW, NHWC or NCHW,NHWC")
    p.add_argument("--dtype", default=None, help="float32, float64 or float32,float64")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds per case (default 1.0, --quick 0.25)")
    p.add_argument("--conv-algorithm", choices=("direct", "winograd"), default=None,
                   help="aekernels.set_conv_algorithm for the run (default: the current one, "
                        "'direct' unless AEKERNELS_CONV_ALGORITHM says otherwise)")
    p.add_argument("--note", default=None,
                   help="free text stored in the JSON and printed in the report "
                        "(e.g. the commit measured)")
    p.add_argument("--load", metavar="FILE.json",
                   help="run nothing: print (and --plot / --markdown) the results of an "
                        "earlier --json FILE")


def _choices(value: str | None, allowed: Sequence[str], default: Sequence[str], what: str
             ) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise SystemExit(f"aekernels bench: {what} must be among {', '.join(allowed)}, "
                         f"got {value!r}")
    return items


def run(args: argparse.Namespace) -> int:
    """Run ``aekernels bench`` with parsed ``args``; returns the exit status."""
    if args.load:
        with open(args.load) as f:
            result = json.load(f)
        if not result.get("complete", True):
            print(f"note: {args.load} is a partial run ({len(result['results'])} rows)")
        result["summary"] = summarize(result["results"], result.get("ceilings", {}))
        _report(result, args)
        return 0
    import aekernels as ak

    quick = args.quick
    layouts = _choices(args.layout, LAYOUTS, ("NCHW",) if quick else LAYOUTS, "--layout")
    dtypes = _choices(args.dtype, DTYPES, ("float32",) if quick else DTYPES, "--dtype")
    backends = _choices(args.backend, ("native", "numba"), (ak.backend(),), "--backend")
    for b in backends:
        if b not in ak.available_backends():
            ak.use_backend(b)  # raises RuntimeError saying why it failed to load
    threads = args.threads if args.threads is not None else _default_threads()
    if threads < 1:
        raise SystemExit("aekernels bench: --threads must be >= 1")
    patterns = [p.strip() for p in args.cases.split(",")] if args.cases else None
    selected = cases(layouts, dtypes, patterns)
    if not selected:
        raise SystemExit(f"aekernels bench: no case matches --cases {args.cases!r}")
    budget = QUICK if quick else FULL
    if args.budget is not None:
        budget = Budget(args.budget, budget.warmup, budget.min_repeats, budget.max_repeats)

    torch = _import_torch(required=True) if args.compare == "torch" else None
    ak.set_num_threads(threads)
    if args.conv_algorithm:
        ak.set_conv_algorithm(args.conv_algorithm)
    if torch is not None:
        torch.set_num_threads(threads)
    info = machine_info(threads, torch)
    load_before = _loadavg()
    print(f"aekernels bench: {len(selected)} cases x backend {', '.join(backends)}"
          f"{' vs torch' if torch is not None else ''}, {threads} threads, "
          f"{budget.seconds:g} s per case, ISA path {info['aekernels_isa']}, "
          f"conv algorithm {info['conv_algorithm']}", flush=True)

    # Ceilings first, then the cases; BLAS at the same thread count throughout.
    ceilings: dict[str, Any] = {"gemm_gflops": {}, "gemm_mnk": {}}
    limits = _blas_limits(threads)
    ceilings["blas_threads_limited"] = limits is not None
    log = (lambda s: print(s, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    try:
        for name in ("resnet3x3", "vgg3x3"):
            mnk = _CONV_BY_NAME[name].gemm_mnk
            ceilings["gemm_mnk"][name] = mnk
            ceilings["gemm_gflops"][name] = gemm_gflops(*mnk, budget)
        ceilings["copy_gbps"] = copy_gbps(torch, budget)
        def progress(rows: list[dict]) -> None:
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"complete": False, "command": _command_line(args),
                               "machine": info, "ceilings": ceilings, "results": rows}, f)

        rows = run_cases(selected, backends, torch, budget, log, progress)
    finally:
        if limits is not None:
            limits.restore_original_limits()
    info["loadavg_1min"] = {"start": load_before, "end": _loadavg()}
    result = {
        "complete": True, "command": _command_line(args), "note": args.note,
        "machine": info, "ceilings": ceilings, "budget": asdict(budget),
        "seconds": time.perf_counter() - t0, "results": rows,
        "summary": summarize(rows, ceilings),
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    _report(result, args)
    if args.json:
        print(f"wrote {args.json}")
    return 0


def summarize(rows: list[dict], ceilings: dict) -> dict:
    """Judge the rows against issue 4 (fills target/met in place); the summary counts."""
    evaluate(rows, ceilings.get("gemm_gflops", {}), ceilings.get("copy_gbps", {}).get("numpy"))
    judged = [r for r in rows if r["met"] is not None]
    return {"targets": len(judged), "met": sum(r["met"] for r in judged),
            "missed": [r["id"].split("/", 1)[1] for r in judged if not r["met"]],
            "met_by_min": sum(_met_by_min(r) for r in judged),
            "numba_geomean": numba_geomean(rows),
            "numba_cases": sum(r["backend"] == "numba" for r in rows)}


def _report(result: dict, args: argparse.Namespace) -> None:
    """Print the table and summary; write --markdown and --plot."""
    rows, m = result["results"], result["machine"]
    print()
    print("\n".join(table_lines(rows)))
    print()
    print("\n".join(summary_lines(result)))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown_report(result))
        print(f"wrote {args.markdown}")
    if args.plot:
        gm = result.get("summary", {}).get("numba_geomean")
        plot(rows, args.plot, f"aekernels / PyTorch time, {m['cpu']}, {m['threads']} threads, "
                              f"ISA {m['aekernels_isa']}, {m['date']}"
                              + (f"\nnumba / native time, geometric mean: {gm:.2f}x" if gm else ""))
        print(f"wrote {args.plot}")


def _command_line(args: argparse.Namespace) -> str:
    """The options given, as an ``aekernels bench`` command line."""
    parts = ["aekernels bench"]
    for name, value in vars(args).items():
        if name in ("fn", "command") or value in (None, False):
            continue
        flag = "--" + name.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)


def ratio_matrix_lines(rows: list[dict], stat: str = "ratio") -> list[str]:
    """Markdown: one line per (shape, kernel), the native ratio of each layout x dtype.

    A cell reads ``0.42`` (target met), ``**1.31** (> 1.00)`` (missed: target in
    brackets) or ``-`` (not run).
    """
    combos = [(lay, dt) for dt in DTYPES for lay in LAYOUTS]
    native = {(r["shape"], r["kernel"], r["layout"], r["dtype"]): r
              for r in rows if r["backend"] == "native" and r.get(stat) is not None}
    present = [c for c in combos if any((k[2], k[3]) == c for k in native)]
    if not present:
        return []
    keys = list(dict.fromkeys((k[0], k[1]) for k in native))
    head = ["shape", "kernel"] + [f"{lay} {dt.replace('float', 'fp')}" for lay, dt in present]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for shape, kernel in keys:
        cells = []
        for lay, dt in present:
            r = native.get((shape, kernel, lay, dt))
            if r is None:
                cells.append("-")
                continue
            v = r[stat]
            met = r.get("met") if stat == "ratio" else (
                _met_by_min(r) if r.get("target") is not None else None)
            if met is False:
                cells.append(f"**{v:.2f}** (> {r['target']:.2f})" if v > r["target"] else
                             f"**{v:.2f}** (GF/s < {r['min_rate']:.0f})")
            else:
                cells.append(f"{v:.2f}")
        lines.append("| " + " | ".join([shape, kernel] + cells) + " |")
    return lines


def markdown_report(result: dict) -> str:
    """The results as markdown: command, machine, ceilings, a ratio matrix, the full table."""
    lines = [f"Command: `{result['command']}`", ""]
    lines += [f"- {line}" for line in summary_lines(result)]
    matrix = ratio_matrix_lines(result["results"])
    if matrix:
        lines += ["", "Ratio aekernels time / PyTorch time (median; lower is better; bold = "
                  "issue 4 target missed, target in brackets):", "", *matrix]
    load = result["machine"].get("loadavg_1min") or {}
    if matrix and (load.get("start") or 0) > 1.5:
        lines += ["", "The machine was busy (load average above): the same, from the minimum "
                  "call times (closer to the uncontended speed of both libraries):", "",
                  *ratio_matrix_lines(result["results"], "ratio_min")]
    lines += ["", "All rows:", "", *table_lines(result["results"], markdown=True), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m aekernels.bench`` (same options as ``aekernels bench``)."""
    p = argparse.ArgumentParser(prog="aekernels bench", description=__doc__.split("\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
