#!/usr/bin/env bash
# The whole test suite: set-up (virtualenv + install), lint, type-check, tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k crypto -x`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/bootstrap.sh dev
echo "==> ruff" >&2
ruff check .
echo "==> mypy" >&2
mypy
echo "==> pytest" >&2
exec python -m pytest -q "$@"
