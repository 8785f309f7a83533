#!/usr/bin/env bash
# The main job: set up the virtualenv, start the whole platform (`faas dev`: server on SQLite,
# S3, gateway, one executor) and deploy examples/convert.py. Then, in another terminal:
#   curl 'http://127.0.0.1:8000/function/convert?celsius=21'
# Extra arguments go to `faas dev` (see `faas dev --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/bootstrap.sh all,devstack
exec faas dev --deploy examples/convert.py "$@"
