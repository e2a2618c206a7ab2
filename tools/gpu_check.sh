#!/usr/bin/env bash
# Kept at this path because the developers' guide names it: the check is tools/gpu/gpu_check.sh.
exec "$(dirname "$0")/gpu/gpu_check.sh" "$@"
