#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite: ruff, mypy, then pytest over tests/
# (unit and integration tests, the latter against real Pebble, nginx, apache2 and openssl).
# Every step runs even if an earlier one failed, so one run shows all problems; the exit status
# is non-zero if any step failed. Run as root on a fresh Debian machine; idempotent.
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

results=()
failed=0

step() {  # step NAME COMMAND...: run COMMAND, record "NAME: ok" or "NAME: FAILED (...)"
    local name=$1; shift
    echo
    echo "==> $name: $*"
    local rc=0
    "$@" || rc=$?
    local note=""
    if [ "$name" = pytest ] && [ "$rc" = 5 ]; then
        note=" - no tests were collected"
    fi
    if [ "$rc" = 0 ]; then
        results+=("$name: ok")
    else
        results+=("$name: FAILED (exit $rc$note)")
        failed=1
    fi
}

step ruff .venv/bin/ruff check .
step mypy .venv/bin/mypy
step pytest .venv/bin/pytest -p no:cacheprovider tests/

echo
echo "==> summary"
printf '  %s\n' "${results[@]}"
if [ "$failed" != 0 ]; then
    echo "test: FAILED" >&2
    exit 1
fi
echo "test: all passed"
