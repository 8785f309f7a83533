#!/usr/bin/env bash
# The full soak: 10 minutes at a steady rate through the gateway with 2 executors on this machine,
# then a check that nothing was lost and no component's memory grew beyond the bound.
#   bash scripts/soak.sh                                  # 10 minutes, 25 calls/s
#   bash scripts/soak.sh --minutes 30 --rate 40 --out soak.json
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh dev
exec python -m tests.reliability.soak --minutes 10 "$@"
