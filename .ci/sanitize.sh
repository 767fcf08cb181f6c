#!/usr/bin/env bash
# Sanitizer run: build both extensions (aekernels._native, aekernels._pool) with
# AddressSanitizer + UndefinedBehaviorSanitizer in a scratch copy of the working tree,
# then run the test suite (and optionally the fuzz harness) against that copy.
#
#   .ci/sanitize.sh                       # whole test suite under ASAN+UBSAN
#   .ci/sanitize.sh --fuzz 100000         # ... then .ci/fuzz.py for 100000 cases
#   .ci/sanitize.sh --no-tests --fuzz N   # fuzz only
#   .ci/sanitize.sh -- -x tests/hardening # extra pytest arguments after --
#
# Measured 2026-11-25 on the shared 2-core box (load ~10): build 86 s; fuzz 100,000
# cases x 2 backends 873 s, 0 crashes/hangs/reports; the whole suite (~4,300 tests)
# under ASAN at -O0 progresses ~1% per minute there, i.e. well over an hour.  A CI-sized
# run: .ci/sanitize.sh --fuzz 20000 -- tests/hardening tests/test_bad_input.py
#
# Nothing is built in the source tree: the sources (tracked + untracked, minus ignored
# files such as build/ and *.so) are copied to a temp dir, built there in place, and
# imported from there via PYTHONPATH.  Every sanitizer report is written to a log file
# (ASAN/UBSAN log_path), so reports from subprocesses (the crash-isolation tests, the
# fuzz workers) are counted too.  Exit 0 only if the tests pass and there are zero
# reports.  KEEP=1 keeps the scratch dir.
#
# Options passed to the sanitizers:
#   detect_leaks=0             CPython's own allocations are not freed at exit
#   allocator_may_return_null=1, max_allocation_size_mb=2048, hard_rss_limit_mb=6144
#                              a huge-but-valid allocation must become MemoryError,
#                              as it does in a normal build, not an ASAN abort
#   PYTHONMALLOC=malloc        route Python objects through ASAN's malloc too
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
fuzz_cases=0
run_tests=1
pytest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --fuzz) fuzz_cases=$2; shift 2 ;;
        --no-tests) run_tests=0; shift ;;
        --) shift; pytest_args=("$@"); break ;;
        *) echo "usage: $0 [--fuzz N] [--no-tests] [-- pytest args]" >&2; exit 2 ;;
    esac
done
start=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/aekernels-sanitize.XXXXXX")
if [ "${KEEP:-0}" != 1 ]; then trap 'rm -rf "$work"' EXIT; fi
src="$work/src"
reports="$work/reports"
mkdir -p "$src" "$reports"

# --- copy the working tree (what `git status` would show, without ignored files) ---
# Virtual environments (CI's .venv-ci holds torch and jax, ~2 GB) are never copied.
(cd "$root" && git ls-files -z --cached --others --exclude-standard -- . \
        ':(exclude).venv*' ':(exclude)**/pyvenv.cfg') |
    (cd "$root" && xargs -0 cp --parents -t "$src" 2>/dev/null || true)
# xargs/cp complain about tracked files deleted in the working tree: those are skipped.
test -f "$src/setup.py" || { echo "sanitize: copy failed" >&2; exit 1; }

# --- build with the sanitizers (setup.py: -fsanitize=... -fno-sanitize-recover=all -O0 -g) ---
echo "== building with AEKERNELS_SANITIZE=address,undefined in $src"
(cd "$src" && AEKERNELS_SANITIZE=address,undefined "$py" setup.py -q build_ext --inplace -j 2) \
    > "$work/build.log" 2>&1 || { tail -50 "$work/build.log"; echo "sanitize: build failed" >&2; exit 1; }
for so in "$src"/aekernels/_native*.so "$src"/aekernels/_pool*.so; do
    if ! readelf -d "$so" 2>&1 | grep -q 'NEEDED.*libasan'; then
        echo "sanitize: $so is not linked against libasan; readelf -d, ldd, build log:" >&2
        readelf -d "$so" >&2 || true; ldd "$so" >&2 || true; tail -40 "$work/build.log" >&2
        df -h "$work" >&2 || true
        exit 1
    fi
done
echo "== build done in $(( $(date +%s) - start )) s"

libasan=$(gcc -print-file-name=libasan.so)
libubsan=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$libasan $libubsan"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=2048:hard_rss_limit_mb=6144:abort_on_error=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
export PYTHONMALLOC=malloc
export PYTHONPATH="$src${PYTHONPATH:+:$PYTHONPATH}"
export NUMBA_CACHE_DIR="$work/numba-cache"
export AEKERNELS_REQUIRE_NATIVE=1
export AEKERNELS_SANITIZED=1   # lets timing-sensitive tests scale their budgets (-O0 + ASAN)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}   # no spinning OpenMP threads on a shared box

# The suite must import the sanitizer build, not an installed aekernels.
(cd "$work" && "$py" - <<'PY')
import aekernels, aekernels._native as n, aekernels._pool as p, os
src = os.environ["PYTHONPATH"].split(":")[0]
for m in (aekernels, n, p):
    assert m.__file__.startswith(src), f"imported {m.__file__}, not the sanitizer build in {src}"
assert aekernels.backend() == "native"
print("== importing", aekernels.__file__, "backends:", aekernels.available_backends())
PY

status=0
# the fuzz harness first: it is the shorter, crash-oriented check
if [ "$fuzz_cases" -gt 0 ]; then
    echo "== fuzz: $fuzz_cases cases under ASAN+UBSAN"
    t0=$(date +%s)
    (cd "$src" && "$py" .ci/fuzz.py --cases "$fuzz_cases" --report "$work/fuzz.json") || status=$?
    echo "== fuzz exit $status in $(( $(date +%s) - t0 )) s"
    cp "$work/fuzz.json" "${FUZZ_REPORT:-/tmp/aekernels_fuzz_report.json}" 2>/dev/null || true
fi

if [ "$run_tests" = 1 ]; then
    echo "== pytest under ASAN+UBSAN"
    t0=$(date +%s)
    (cd "$src" && "$py" -m pytest -p no:cacheprovider -q "${pytest_args[@]}") || status=$?
    echo "== pytest exit $status in $(( $(date +%s) - t0 )) s"
fi
# log_path files also receive warnings (e.g. "failed to allocate" when a huge request is
# turned into MemoryError, as intended): only real error reports count.
report_re='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer'
n_files=$(find "$reports" -type f | wc -l)
n_reports=0
if [ "$n_files" -gt 0 ]; then
    n_reports=$(grep -l -E "$report_re" "$reports"/* | wc -l || true)
    n_warn=$(cat "$reports"/* | grep -c WARNING || true)
    echo "== sanitizer log files: $n_files ($n_warn warning lines, e.g. refused huge allocations)"
fi
if [ "$n_reports" -gt 0 ]; then
    echo "== $n_reports sanitizer report file(s):" >&2
    for f in $(grep -l -E "$report_re" "$reports"/*); do echo "---- $f" >&2; grep -v WARNING "$f" | head -80 >&2; done
    cp -r "$reports" "/tmp/aekernels-sanitizer-reports-$(date +%s)" 2>/dev/null || true
    status=1
fi
echo "== sanitize: $n_reports sanitizer reports, exit $status, $(( $(date +%s) - start )) s total"
exit $status
