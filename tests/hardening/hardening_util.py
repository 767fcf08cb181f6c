"""Shared helpers of the hardening tests: settings, crash isolation, RSS."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, settings

import aekernels
from backends import child_env, package_parent

FUZZ = os.environ.get("AEKERNELS_FUZZ", "") == "1"   # conftest sets it from --fuzz
SANITIZED = os.environ.get("AEKERNELS_SANITIZED", "") == "1"   # .ci/sanitize.sh
HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
_CHECKS = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


def hsettings(default: int, fuzz: int | None = None) -> settings:
    """Hypothesis settings: ``default`` fixed-seed examples, or many random ones in fuzz mode."""
    if FUZZ:
        return settings(max_examples=fuzz or default * 50, deadline=None, derandomize=False,
                        database=None, suppress_health_check=_CHECKS, print_blob=True)
    return settings(max_examples=default, deadline=None, derandomize=True, database=None,
                    suppress_health_check=_CHECKS, print_blob=True)


def backends() -> tuple[str, ...]:
    """Backends to test.  A missing native backend is skipped unless CI requires it."""
    avail = aekernels.available_backends()
    if "native" not in avail and os.environ.get("AEKERNELS_REQUIRE_NATIVE") == "1":
        pytest.fail("native backend required (AEKERNELS_REQUIRE_NATIVE=1) but unavailable")
    return tuple(b for b in ("native", "numba") if b in avail)


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ----------------------------------------------------------------------------- isolation

_CHILD = textwrap.dedent(r"""
    import json, os, resource, sys, traceback
    if os.environ.get("AEKERNELS_SANITIZED") != "1":   # ASAN needs its huge shadow mapping
        # a bad input that makes the library allocate gigabytes must fail fast here
        # (MemoryError), not take the shared machine's memory
        lim = int(os.environ.get("AEK_HARDENING_AS_LIMIT", 3 * 2**30))
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    sys.path[:0] = [{here!r}, {tests!r}]
    import {module} as M
    names = json.loads(sys.argv[1])
    for name in names:
        print(json.dumps({{"case": name, "event": "start"}}), flush=True)
        try:
            r = getattr(M, name)()
            rec = {{"case": name, "event": "done", "outcome": "returned", "detail": repr(r)[:300]}}
        except BaseException as exc:
            rec = {{"case": name, "event": "done", "outcome": type(exc).__name__,
                    "detail": str(exc)[:500]}}
        print(json.dumps(rec), flush=True)
""")


def run_isolated(module: str, names: list[str], env: dict | None = None,
                 timeout: float = 600) -> dict[str, dict]:
    """Run the zero-argument functions ``names`` of ``module`` in child processes.

    Returns ``{name: {"outcome": ExceptionName | "returned" | "CRASH", "detail": ...}}``.
    A child that dies (signal, sanitizer abort, hard exit) takes down only itself: the
    case it was running is recorded as a CRASH with its exit status and the tail of its
    stderr, and the remaining cases go to a fresh child.
    """
    results: dict[str, dict] = {}
    todo = list(names)
    code = _CHILD.format(here=HERE, tests=TESTS, module=module)
    env_ = child_env(dict(os.environ, **(env or {})))
    while todo:
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(todo)], cwd=package_parent(),
                              capture_output=True, text=True, env=env_, timeout=timeout)
        running = None
        for line in proc.stdout.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("event") == "start":
                running = rec["case"]
            elif rec.get("event") == "done":
                results[rec["case"]] = rec
                running = None
        if proc.returncode == 0 and running is None:
            missing = [n for n in todo if n not in results]
            for n in missing:
                results[n] = {"outcome": "MISSING", "detail": proc.stderr[-2000:]}
            break
        if running is None:   # died before starting a case (import error...)
            for n in todo:
                if n not in results:
                    results[n] = {"outcome": "CRASH", "detail": f"child exited "
                                  f"{proc.returncode} before any case: {proc.stderr[-3000:]}"}
            break
        results[running] = {"outcome": "CRASH",
                            "detail": f"exit status {proc.returncode}; stderr tail:\n"
                                      f"{proc.stderr[-3000:]}"}
        todo = todo[todo.index(running) + 1:]
    return results
