#!/usr/bin/env python3
"""Crash-isolating structured fuzzer for every aekernels kernel on both backends.

    python .ci/fuzz.py --cases 100000 [--workers 1] [--seed 1] [--report fuzz.json]
    python .ci/fuzz.py --replay SEED:INDEX          # re-run one case, verbosely
    .ci/sanitize.sh --no-tests --fuzz 100000        # the same under ASAN+UBSAN

Each case is generated from its own RNG, ``random.Random(f"{seed}:{index}")`` (so any
case can be replayed alone), by the generators the property tests use
(tests/hardening/hardening_problems.py), and run on *both* backends:

* valid (35%): a random valid call; both backends must return the shape of the formula
  and agree with each other (TESTING.md tolerances; bitwise for max pool/unpool/upsample)
  and, for one case in ten, with the float64 reference (tests/reference.py);
* invalid (45%): a valid call with one argument corrupted (0, negatives, 2**31..2**64,
  wrong types/dtypes/ranks/channels, out-of-plane indices, inconsistent backward shapes,
  bad out=): ValueError/TypeError required, out= untouched;
* raw (20%): the backend kernels themselves (aekernels._dispatch.kernels()) with random
  small arrays whose shapes need not agree, random nhwc, and parameters from
  {-3..5, 2**31, 2**62}: any exception is fine, a crash, hang or sanitizer report is not.

Workers are child processes (NUMBA_BOUNDSCHECK=0, as users run numba).  A worker that
dies (signal, sanitizer abort) or stops making progress for --hang-seconds is replaced;
the case it was running is recorded as a finding with its replay key.  Outside a
sanitizer build each worker runs under RLIMIT_AS (default 3 GiB), so a bad input that
makes the library allocate gigabytes shows up as a finding instead of an OOM kill.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
HARDENING = os.path.join(TESTS, "hardening")

# ================================================================================ worker


def _setup_worker():
    import warnings
    warnings.simplefilter("ignore")    # casts of NaN to int in the generators, etc.
    os.environ["NUMBA_BOUNDSCHECK"] = "0"
    if os.environ.get("AEKERNELS_SANITIZED") != "1":
        import resource
        lim = int(os.environ.get("AEK_FUZZ_AS_LIMIT", 3 * 2**30))
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    sys.path[:0] = [HARDENING, TESTS]


RAW_PARAMS = (-3, -1, 0, 1, 1, 1, 2, 2, 3, 5)
RAW_HUGE = (2**31, 2**62)


def _raw_case(rng: random.Random):
    """(kernel name, args builder) of a random raw backend call with loose shapes."""
    import numpy as np
    dt = rng.choice([np.float32, np.float64])

    def arr(dtype=None, dims=None):
        shape = dims or tuple(rng.choice([0, 1, 1, 2, 3, 4, 5, 6]) for _ in range(4))
        if rng.random() < 0.05:
            shape = shape[:rng.randint(0, 3)]          # wrong rank
        d = dtype or (dt if rng.random() > 0.05 else rng.choice([np.float32, np.float64]))
        return np.asarray(np.random.default_rng(rng.randint(0, 2**31)).standard_normal(shape)
                          ).astype(d)

    def idx(like_shape, plane_hint):
        shape = like_shape if rng.random() < 0.7 else tuple(rng.choice([0, 1, 2, 3]) for _ in range(4))
        hi = max(1, plane_hint + rng.choice([0, 0, 0, 1, 5]))
        a = np.random.default_rng(rng.randint(0, 2**31)).integers(0, hi, size=shape).astype(np.int64)
        if a.size and rng.random() < 0.2:
            a.flat[rng.randrange(a.size)] = rng.choice([-1, 2**31, 2**32 + 3, -(2**63), 2**63 - 1])
        return a

    def p(lo=None):
        if rng.random() < 0.03:
            return rng.choice(RAW_HUGE)
        v = rng.choice(RAW_PARAMS)
        return v if lo is None else max(v, lo) if rng.random() < 0.8 else v

    nhwc = rng.random() < 0.5
    name = rng.choice([
        "conv2d_forward", "conv2d_backward_input", "conv2d_backward_filter",
        "conv2d_backward_bias", "max_pool2d_forward", "max_pool2d_backward",
        "avg_pool2d_forward", "avg_pool2d_backward", "max_unpool2d_forward",
        "max_unpool2d_backward", "upsample_nearest2d_forward", "upsample_nearest2d_backward"])
    if name == "conv2d_forward":
        args = [arr(), arr(), arr(dims=(rng.randint(0, 6),)) if rng.random() < 0.5 else None,
                arr(), p(1), p(1), p(0), p(0), p(1), p(1), p(1), nhwc]
    elif name in ("conv2d_backward_input", "conv2d_backward_filter"):
        args = [arr(), arr(), arr(), p(1), p(1), p(0), p(0), p(1), p(1), p(1), nhwc]
    elif name == "conv2d_backward_bias":
        args = [arr(), arr(dims=(rng.randint(0, 6),)), nhwc]
    elif name == "max_pool2d_forward":
        y = arr()
        args = [arr(), y, idx(y.shape, 16) if rng.random() < 0.6 else None,
                p(1), p(1), p(1), p(1), p(0), p(0), p(1), p(1), nhwc]
    elif name in ("avg_pool2d_forward", "avg_pool2d_backward"):
        args = [arr(), arr(), p(1), p(1), p(1), p(1), p(0), p(0), p(0), p(0), p(1), p(1),
                rng.random() < 0.5, rng.choice([0, 0, 0, 1, 3, -1]), nhwc]
    elif name in ("max_pool2d_backward", "max_unpool2d_forward"):
        a, out = arr(), arr()
        plane = (out.shape[1] * out.shape[2] if nhwc else out.shape[-1] * out.shape[-2]) \
            if out.ndim == 4 else 4
        args = [a, idx(a.shape, plane), out, nhwc]
    elif name == "max_unpool2d_backward":
        gy = arr()
        plane = (gy.shape[1] * gy.shape[2] if nhwc else gy.shape[-1] * gy.shape[-2]) \
            if gy.ndim == 4 else 4
        i = idx(tuple(rng.choice([0, 1, 2, 3]) for _ in range(4)), plane)
        args = [gy, i, arr(dims=i.shape if rng.random() < 0.7 else None), nhwc]
    else:
        args = [arr(), arr(), p(1), p(1), nhwc]
    return name, args


def _describe_raw(name, args):
    import numpy as np
    parts = [f"ndarray{a.shape}:{a.dtype.str}" if isinstance(a, np.ndarray) else repr(a)
             for a in args]
    return f"kernels().{name}({', '.join(parts)})"


def _run_case(seed: int, index: int, backends, stats, findings, log, verbose=False):
    import numpy as np

    import aekernels
    import hardening_problems as P
    from aekernels import _dispatch

    rng = random.Random(f"{seed}:{index}")
    key = f"{seed}:{index}"
    r = rng.random()
    kernel = rng.choice(P.KERNELS)
    src = P.Src(rng=rng)

    def finding(kind, backend, what, detail):
        findings.append(dict(kind=kind, backend=backend, key=key, case=what,
                             detail=str(detail)[:1500]))

    if r < 0.20:                                          # raw backend kernels
        name, args = _raw_case(rng)
        desc = _describe_raw(name, args)
        log.write(f"{key} raw {desc}\n")
        log.flush()
        dts = {a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"}
        for b in backends:
            if b == "numba" and len(dts) > 1:
                # numba would just JIT a new (type-correct) specialisation for mixed
                # dtypes, seconds each: nothing memory-unsafe to find there
                stats["raw/numba/skipped-mixed-dtype"] += 1
                continue
            ns = _dispatch._get(b)
            fresh = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            try:
                getattr(ns, name)(*fresh)
                stats[f"raw/{b}/returned"] += 1
            except (ValueError, TypeError):
                stats[f"raw/{b}/refused"] += 1
            except MemoryError:
                stats[f"raw/{b}/MemoryError"] += 1
            except Exception as exc:   # not a crash, but not the contract's exception
                stats[f"raw/{b}/{type(exc).__name__}"] += 1
                if type(exc).__name__ not in ("TypingError", "NumbaTypeError"):
                    finding("raw-unexpected-exception", b, desc, f"{type(exc).__name__}: {exc}")
            if verbose:
                print(b, desc, "ok")
        return

    mode = "valid" if r < 0.55 else "invalid"
    try:
        call = P.valid_call(kernel, src) if mode == "valid" else P.invalid_call(kernel, src)
    except P.Reject:
        stats["rejected-draw"] += 1
        return
    desc = call.describe()
    log.write(f"{key} {mode} {desc}\n")
    log.flush()
    if verbose:
        print(mode, desc)
    if mode == "invalid":
        for b in backends:
            with aekernels.use_backend(b):
                c = call.copy()
                snap = P.sentinel_out(c)
                try:
                    res = c.run(aekernels)
                except (ValueError, TypeError):
                    stats[f"invalid/{b}/refused"] += 1
                    if snap is not None and not np.array_equal(c.kwargs["out"], snap, equal_nan=True):
                        finding("out-written-on-error", b, desc, "")
                    continue
                except Exception as exc:
                    stats[f"invalid/{b}/wrong-exception"] += 1
                    finding("invalid-wrong-exception", b, desc, f"{type(exc).__name__}: {exc}")
                    continue
                stats[f"invalid/{b}/ACCEPTED"] += 1
                finding("invalid-accepted", b, desc, f"returned {getattr(res, 'shape', type(res))}")
        return
    results = {}
    for b in backends:
        with aekernels.use_backend(b):
            try:
                results[b] = call.copy().run(aekernels)
                stats[f"valid/{b}/ok"] += 1
            except Exception as exc:
                stats[f"valid/{b}/RAISED"] += 1
                finding("valid-raised", b, desc, f"{type(exc).__name__}: {exc}")
    check_ref = rng.random() < 0.1
    for b, res in results.items():
        try:
            if check_ref:
                P.check_result(call, res)
            else:   # shape formula, and the backends agree with each other
                first = results[backends[0]]
                vals = res[0] if call.kernel == "max_pool2d" else res
                assert vals.shape == tuple(call.shape), f"shape {vals.shape} != {call.shape}"
                if b != backends[0]:
                    a0 = first if isinstance(first, tuple) else (first,)
                    a1 = res if isinstance(res, tuple) else (res,)
                    for u, v in zip(a0, a1):
                        if call.exact or u.dtype == np.int64:
                            np.testing.assert_array_equal(u, v, strict=True)
                        else:
                            tol = 1e-9 if u.dtype == np.float64 else 2e-4
                            np.testing.assert_allclose(u, v, rtol=tol, atol=tol)
            stats["valid/checked-reference" if check_ref else "valid/checked-cross"] += 1
        except AssertionError as exc:
            finding("valid-mismatch", b, desc, exc)


def _warm_up(backends):
    """JIT-compile (or load from numba's cache) every numba kernel before the watchdog
    starts: a first compile under ASAN can take minutes and is not a hang."""
    import numpy as np

    import aekernels
    sys.path[:0] = [HARDENING]
    import hardening_workloads as W
    for b in backends:
        with aekernels.use_backend(b):
            for dt in (np.float32, np.float64):
                for layout in ("NCHW", "NHWC"):
                    for k in W.KERNELS:
                        args, kwargs = W.workload(k, n=1, c=2, hw=6, dtype=dt, layout=layout)
                        W.call(k, args, kwargs)


def worker_main(args):
    _setup_worker()
    import aekernels
    backends = [b for b in ("native", "numba") if b in aekernels.available_backends()]
    if args.require_both and len(backends) < 2:
        print(json.dumps({"fatal": f"backends available: {backends}"}), flush=True)
        sys.exit(3)
    aekernels.set_num_threads(args.threads)
    _warm_up(backends)
    print(json.dumps({"ready": True}), flush=True)
    stats = collections.Counter()
    findings = []
    with open(args.log, "a") as log:
        for i in range(args.start, args.start + args.cases):
            try:
                _run_case(args.seed, i, backends, stats, findings, log)
            except Exception as exc:   # a bug in the generators, not in aekernels
                stats["harness-error"] += 1
                findings.append(dict(kind="harness-error", backend="-", key=f"{args.seed}:{i}",
                                     case="", detail=traceback.format_exc()[-1500:]))
            stats["cases"] += 1
            if (i + 1) % 50 == 0:
                print(json.dumps({"progress": i + 1}), flush=True)
    print(json.dumps({"done": True, "stats": stats, "findings": findings,
                      "backends": backends}), flush=True)


# ============================================================================ supervisor


def _spawn(args, start, count, log):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--seed", str(args.seed),
           "--start", str(start), "--cases", str(count), "--log", log,
           "--threads", str(args.threads)] + (["--require-both"] if args.require_both else [])
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, NUMBA_BOUNDSCHECK="0"))


def _last_case(log):
    try:
        with open(log, "rb") as f:
            f.seek(max(0, os.path.getsize(log) - 65536))
            lines = f.read().decode(errors="replace").splitlines()
        return lines[-1] if lines else ""
    except OSError:
        return ""


def supervise(args):
    import select
    t_start = time.time()
    workdir = args.workdir or os.path.join("/tmp", f"aekernels-fuzz-{os.getpid()}")
    os.makedirs(workdir, exist_ok=True)
    total = collections.Counter()
    findings, crashes = [], []
    backends = None
    queue = [(s, min(args.chunk, args.cases - s)) for s in range(0, args.cases, args.chunk)]
    running = {}   # pid -> (proc, start, count, log, last_progress_time)
    done_cases = 0

    def launch():
        s, n = queue.pop(0)
        log = os.path.join(workdir, f"w{s}.log")
        proc = _spawn(args, s, n, log)
        running[proc.pid] = [proc, s, n, log, time.time(), [], False]   # ..., ready

    while queue or running:
        while queue and len(running) < args.workers:
            launch()
        fds = {st[0].stdout.fileno(): pid for pid, st in running.items()}
        ready, _, _ = select.select(list(fds), [], [], 5.0)
        now = time.time()
        for fd in ready:
            pid = fds[fd]
            st = running[pid]
            line = st[0].stdout.readline()
            if line:
                st[4] = now
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("ready"):
                    st[6] = True
                if "progress" in msg and args.verbose:
                    print(f"  worker {st[1]}: {msg['progress']} cases", flush=True)
                if msg.get("done"):
                    st[5].append(msg)
                continue
            # EOF: the worker ended
            proc, s, n, log, _, msgs, _ = running.pop(pid)
            rc = proc.wait()
            err = proc.stderr.read()
            if msgs:
                m = msgs[-1]
                total.update(m["stats"])
                findings += m["findings"]
                backends = m["backends"]
                done_cases += m["stats"].get("cases", 0)
                os.unlink(log) if os.path.exists(log) else None
            else:
                last = _last_case(log)
                key = last.split(" ", 1)[0] if last else f"{args.seed}:{s}"
                crashes.append(dict(kind="CRASH", exit=rc, key=key, case=last,
                                    stderr=err[-4000:]))
                print(f"CRASH (exit {rc}) at {key}: {last}\n{err[-1500:]}", flush=True)
                try:
                    idx = int(key.split(":")[1])
                except (IndexError, ValueError):
                    idx = s
                done_cases += idx - s + 1
                if idx + 1 < s + n:
                    queue.insert(0, (idx + 1, s + n - idx - 1))
        for pid, st in list(running.items()):
            if now - st[4] > (args.hang_seconds if st[6] else args.startup_seconds):
                proc, s, n, log = st[0], st[1], st[2], st[3]
                proc.kill()
                proc.wait()
                running.pop(pid)
                last = _last_case(log)
                key = last.split(" ", 1)[0] if last else f"{args.seed}:{s}"
                crashes.append(dict(kind="HANG", exit=None, key=key, case=last, stderr=""))
                print(f"HANG (> {args.hang_seconds} s without progress) at {key}: {last}", flush=True)
                idx = int(key.split(":")[1]) if ":" in key else s
                done_cases += idx - s + 1
                if idx + 1 < s + n:
                    queue.insert(0, (idx + 1, s + n - idx - 1))
        if args.time_limit and time.time() - t_start > args.time_limit:
            for st in running.values():
                st[0].kill()
            print("time limit reached", flush=True)
            break

    elapsed = time.time() - t_start
    kinds = collections.Counter(f["kind"] for f in findings) + collections.Counter(
        c["kind"] for c in crashes)
    # one example per (kind, backend, kernel) keeps the report readable
    seen, examples = set(), []
    for f in crashes + findings:
        head = (f.get("case") or "").split("(")[0].split()
        sig = (f["kind"], f.get("backend"), head[-1] if head else "")
        if sig not in seen:
            seen.add(sig)
            examples.append(f)
    report = dict(cases=done_cases, kernel_calls_per_case=len(backends or []),
                  backends=backends, seed=args.seed, seconds=round(elapsed, 1),
                  sanitized=os.environ.get("AEKERNELS_SANITIZED") == "1",
                  crashes=len(crashes), findings_by_kind=dict(kinds), stats=dict(total),
                  examples=examples[:60])
    text = json.dumps(report, indent=1, default=str)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text)
    print(f"fuzz: {done_cases} cases x {len(backends or [])} backends {backends} in "
          f"{elapsed:.0f} s (seed {args.seed}, sanitized={report['sanitized']}): "
          f"{len(crashes)} crashes/hangs, findings {dict(kinds) or 'none'}")
    for k in sorted(total):
        print(f"  {k:40s} {total[k]}")
    for e in examples[:25]:
        print(f"  [{e['kind']}] {e.get('backend', '')} replay {e['key']}: {e.get('case', '')[:300]}"
              f"\n      {str(e.get('detail', e.get('stderr', '')))[:300]}")
    return 0 if not crashes and not findings else 1


def replay(args):
    _setup_worker()
    import aekernels
    seed, index = (int(v) for v in args.replay.split(":"))
    backends = [b for b in ("native", "numba") if b in aekernels.available_backends()]
    stats, findings = collections.Counter(), []
    _run_case(seed, index, backends, stats, findings, sys.stdout, verbose=True)
    print(dict(stats))
    for f in findings:
        print(json.dumps(f, indent=1))
    return 1 if findings else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=5000, help="cases per worker process")
    ap.add_argument("--threads", type=int, default=1,
                    help="aekernels.set_num_threads (the determinism/thread tests cover > 1)")
    ap.add_argument("--hang-seconds", type=float, default=300,
                    help="no progress for this long after warm-up = a hang")
    ap.add_argument("--startup-seconds", type=float, default=3600,
                    help="limit for a worker's import + numba warm-up")
    ap.add_argument("--time-limit", type=float, default=0, help="seconds; 0 = none")
    ap.add_argument("--report", help="write the JSON report here")
    ap.add_argument("--workdir")
    ap.add_argument("--require-both", action="store_true", default=True)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--replay", help="SEED:INDEX: run one case in this process, verbosely")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--log", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(args)
        return 0
    if args.replay:
        return replay(args)
    return supervise(args)


if __name__ == "__main__":
    sys.exit(main())
