#!/usr/bin/env bash
# Run a command inside the toolkit's environment (created on first use by tools/setup_env.sh).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
env=$("$repo/tools/setup_env.sh" | tail -n 1)
export PATH="$env/bin:$PATH" PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
cd "$repo"
exec "$@"
