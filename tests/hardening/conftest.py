"""Hardening tests (issue 8): properties, CVE-class regressions, raw-backend defence in
depth, threads, memory, determinism.

``--fuzz`` (or AEKERNELS_FUZZ=1) turns the hypothesis property tests into a long
random search (many more examples, a fresh random seed each run).  pytest only
registers this option when it loads this file at startup, i.e. when tests/hardening
is on the command line: ``pytest tests/hardening --fuzz``; for the whole suite use
``AEKERNELS_FUZZ=1 pytest``.  The default is a fixed-seed (derandomized) run with a
modest number of examples, so CI is deterministic and quick.
"""
import os
import sys

# tests/hardening is a package (its conftest must not be importable as plain
# "conftest"); its helper modules are imported as top-level modules, from here.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import hardening_util  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--fuzz", action="store_true", default=False,
                     help="hardening: run the hypothesis property tests with many more "
                          "examples and random seeds (also AEKERNELS_FUZZ=1)")


def fuzz_mode(config) -> bool:
    try:
        opt = config.getoption("--fuzz")
    except ValueError:      # option not registered (this conftest was not an initial one)
        opt = False
    return bool(opt) or os.environ.get("AEKERNELS_FUZZ", "") == "1"


def pytest_configure(config):
    # read by hardening_util.hsettings() when the test modules are imported; the global
    # hypothesis profile (other test files) is left alone
    hardening_util.FUZZ = fuzz_mode(config)


def pytest_report_header(config):
    return f"hardening: {'FUZZ mode' if fuzz_mode(config) else 'default mode'}"
