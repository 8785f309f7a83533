#!/usr/bin/env bash
# Creates (or reuses) the project virtualenv and installs the project into it.
# Usage: source scripts/bootstrap.sh EXTRAS   (e.g. "dev" or "all")
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
extras="${1:-all}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${COLONYFAAS_VENV:-$root/.venv}"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  for cand in python3.11 python3.12 python3.13 python3.10 python3; do
    if command -v "$cand" >/dev/null 2>&1; then py="$cand"; break; fi
  done
fi
[ -n "$py" ] || { echo "error: no python3 found (need Python >= 3.10)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating virtualenv $venv with $py" >&2
  "$py" -m venv "$venv"
fi
stamp="$venv/.colonyfaas-installed-$extras"
want="$(cat "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> installing colonyfaas[$extras] into $venv" >&2
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q -e "$root[$extras]" >&2
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
