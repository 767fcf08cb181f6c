#!/usr/bin/env bash
# No AVX outside the dispatched ISA units in the compiled extensions (see check_isa.py).
#   .ci/check_isa.sh                 # build the extensions into a scratch dir, check them
#   .ci/check_isa.sh PATH...         # check given .so files / directories holding them
#                                    # (e.g. the installed aekernels package)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -eq 0 ]; then
    # A scratch build, so that no .so lands in the source tree (it would shadow the
    # installed package for the steps that follow).
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    if ! python setup.py build_ext --build-lib "$scratch/lib" --build-temp "$scratch/tmp" \
            >"$scratch/build.log" 2>&1; then
        tail -n 40 "$scratch/build.log"
        echo "check_isa.sh: build failed" >&2
        exit 2
    fi
    set -- "$scratch/lib/aekernels"
fi
python .ci/check_isa.py "$@"
