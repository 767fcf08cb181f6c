"""Run crash-prone tests in a child interpreter, so a segfault cannot kill pytest.

Usage in a test module::

    from isolation import isolated

    @isolated
    def test_unpool_rejects_out_of_range_indices():
        ...                      # plain test body, no fixtures; the backend is active

``@isolated`` turns the body into a pytest test taking the ``backend`` fixture.  The
first such test of a module/backend runs *all* of that module's isolated bodies in one
child interpreter (``python tests/isolation.py <module file> <backend> <start>``) with
that backend active, which reports each outcome on its own line.  If the child dies (a
crash) or hangs, the body that was running is reported as crashed and the child is
restarted after it.  Each pytest test then reports its body's outcome.

Set AEKERNELS_TESTS_INPROCESS=1 to run the bodies directly in the pytest process
(for debugging with pdb).
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import traceback

CHILD_TIMEOUT = 600          # seconds for one child run (all remaining bodies)
REGISTRY: dict[str, list] = {}          # module name -> bodies in definition order
_RESULTS: dict[tuple[str, str], dict] = {}


def isolated(body):
    """Register ``body`` and return the pytest test that reports its isolated outcome."""
    REGISTRY.setdefault(body.__module__, []).append(body)
    module_name = body.__module__

    @functools.wraps(body)
    def test(backend):
        if os.environ.get("AEKERNELS_TESTS_INPROCESS") == "1":
            body()
            return
        import pytest
        module_file = sys.modules[module_name].__file__
        results = _results(module_name, module_file, backend)
        status, detail = results.get(body.__name__, ("missing", "no result from the child"))
        if status == "ok":
            return
        if status == "skip":
            pytest.skip(detail)
        if status == "fail":
            pytest.fail(f"[{backend}, in a child interpreter]\n{detail}", pytrace=False)
        pytest.fail(f"[{backend}] {status.upper()}: {detail}", pytrace=False)

    del test.__wrapped__          # pytest must see the (backend) signature, not the body's
    test.isolated_body = body
    return test


def _results(module_name: str, module_file: str, backend: str) -> dict:
    key = (module_name, backend)
    if key not in _RESULTS:
        _RESULTS[key] = _run_children(module_name, module_file, backend)
    return _RESULTS[key]


def _run_children(module_name, module_file, backend):
    names = [b.__name__ for b in REGISTRY[module_name]]
    results: dict[str, tuple[str, str]] = {}
    start = 0
    env = dict(os.environ)
    env.setdefault("NUMBA_BOUNDSCHECK", "1")
    # the child must import the same aekernels as this process
    import aekernels
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(aekernels.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in
                                        env.get("PYTHONPATH", "").split(os.pathsep) if p])
    while start < len(names):
        with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as log:
            log_path = log.name
        cmd = [sys.executable, os.path.abspath(__file__), module_file, module_name, backend,
               str(start), log_path]
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, timeout=CHILD_TIMEOUT)
            rc, stderr, hung = proc.returncode, proc.stderr.decode(errors="replace"), False
        except subprocess.TimeoutExpired as exc:
            rc, stderr, hung = None, (exc.stderr or b"").decode(errors="replace"), True
        with open(log_path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        os.unlink(log_path)
        running = None
        for rec in records:
            if "start" in rec:
                running = rec["start"]
            else:
                results[rec["name"]] = (rec["status"], rec["detail"])
                running = None
        if running is None:
            if rc == 0 and not hung:
                break
            # died before or between bodies (import failure...): blame all that remain
            done = set(results)
            for n in names[start:]:
                if n not in done:
                    results[n] = ("crash", f"child exited with {rc} before running it:\n"
                                           f"{stderr[-3000:]}")
            break
        what = "hang (killed after timeout)" if hung else f"crash (child exit status {rc})"
        results[running] = ("crash", f"{what} while running {running}\n{stderr[-3000:]}")
        start = names.index(running) + 1
    return results


def _child_main(module_file, module_name, backend, start, log_path):
    """In the child: import the module, activate the backend, run bodies from ``start``."""
    import faulthandler
    faulthandler.enable()
    sys.path.insert(0, os.path.dirname(module_file))
    os.environ.setdefault("NUMBA_BOUNDSCHECK", "1")
    import pytest
    spec = importlib.util.spec_from_file_location(module_name, module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    import aekernels
    aekernels.use_backend(backend)
    bodies = REGISTRY[module_name][int(start):]
    with open(log_path, "a", buffering=1) as log:
        for body in bodies:
            log.write(json.dumps({"start": body.__name__}) + "\n")
            log.flush()
            os.fsync(log.fileno())
            try:
                body()
                status, detail = "ok", ""
            except pytest.skip.Exception as exc:
                status, detail = "skip", str(exc)
            except BaseException:  # noqa: BLE001 - report everything, incl. pytest.fail
                status, detail = "fail", traceback.format_exc()
            log.write(json.dumps({"name": body.__name__, "status": status,
                                  "detail": detail}) + "\n")
            log.flush()


if __name__ == "__main__":
    # `isolation` must be the same module object the test module registers into
    sys.modules["isolation"] = sys.modules["__main__"]
    _child_main(*sys.argv[1:6])
