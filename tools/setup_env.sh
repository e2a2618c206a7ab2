#!/usr/bin/env bash
# Create (or reuse) the pinned Python environment this toolkit runs in.
#
#   tools/setup_env.sh            # prints the environment's path on its last line
#
# The environment lives outside the clone, keyed by a hash of the requirement files and this
# script, so every clone on a machine (CI's fresh clones included) shares one build and a
# second run with nothing changed only checks that it still imports (a few seconds).
#
# mmcv 2.1.0 is the hard part: official wheels stop at torch 2.4, its setup.py asks for C++14/17
# while torch 2.14's headers need C++20, and under build isolation it silently skips the ops.
# We take a matching prebuilt wheel when pip's find-links offers one and it imports against our
# torch; otherwise we build it from the PyPI source with the flag raised to C++20 and cache the
# resulting wheel beside the environments.
#
# Variables: CONVNEXT_ENV_ROOT (default ~/.cache/convnext-dense), PYTHON (default python3),
# PIP_FIND_LINKS (pip's own; a folder holding an mmcv 2.1.0 wheel), MAX_JOBS (build parallelism),
# FORCE_CUDA=1/0 (default: CUDA ops when nvcc and a GPU are present).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
root=${CONVNEXT_ENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/convnext-dense}
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(cat "$repo"/requirements/*.txt "$repo/tools/setup_env.sh" | { cat; echo "py$pyver"; } \
      | sha256sum | cut -c1-12)
env="$root/env-$key"
stamp="$env/.convnext-env-complete"
log() { echo "[setup_env] $*" >&2; }

check_env() {
    "$env/bin/python" - <<'EOF'
import mmcv, mmdet, mmseg, mmengine, timm, torch  # noqa: F401
from mmcv.ops import nms  # noqa: F401  (fails when mmcv was built without ops)
import mmcv._ext  # noqa: F401
EOF
}

if [[ -f "$stamp" ]] && check_env 2>/dev/null; then
    log "reusing $env"
    echo "$env"
    exit 0
fi

# One builder at a time: parallel callers (make targets, several shells) wait here, then reuse.
mkdir -p "$root"
exec 9>"$root/.lock-$key"
if ! flock -n 9; then
    log "another set-up of $env is running; waiting for it"
    flock 9
fi
if [[ -f "$stamp" ]] && check_env 2>/dev/null; then
    log "reusing $env"
    echo "$env"
    exit 0
fi

start=$SECONDS
mkdir -p "$root/wheels"
if [[ ! -x "$env/bin/python" ]]; then
    log "creating $env (python $pyver)"
    "$PYTHON" -m venv "$env"
fi
py="$env/bin/python"
pip() { "$py" -m pip --disable-pip-version-check "$@"; }
# Wheels we built before, and the prebuilt cache a checkout may have beside it (../shared/wheels).
export PIP_FIND_LINKS="${PIP_FIND_LINKS:-} $root/wheels"
[[ -d "$repo/../shared/wheels" ]] && PIP_FIND_LINKS+=" $(cd "$repo/../shared/wheels" && pwd)"

log "installing torch (the largest step)"
pip install -q -r "$repo/requirements/torch.txt"
# Everything but mmcv first: importing mmcv needs mmengine, and mmcv's setup.py imports
# pkg_resources (setuptools < 81, pinned in runtime.txt).
log "installing the OpenMMLab stack, timm and test tools"
pip install -q -r "$repo/requirements/runtime.txt" -r "$repo/requirements/tests.txt" wheel ninja

mmcv_ok() { "$py" -c 'import mmcv._ext, mmcv; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; }

if ! mmcv_ok; then
    # A wheel offered through find-links (never from an index: PyPI only has the source).
    if pip install -q --no-index --no-deps 'mmcv==2.1.0' 2>/dev/null && mmcv_ok; then
        log "mmcv 2.1.0 installed from a prebuilt wheel offered via PIP_FIND_LINKS"
    else
        pip uninstall -q -y mmcv 2>/dev/null || true
        build=$(mktemp -d)
        trap 'rm -rf "$build"' EXIT
        log "building mmcv 2.1.0 from source with compiled ops (about 10 minutes on 2 cores)"
        pip download -q --no-deps --no-binary mmcv --no-build-isolation -d "$build" 'mmcv==2.1.0'
        tar -xzf "$build"/mmcv-2.1.0.tar.gz -C "$build"
        src="$build/mmcv-2.1.0"
        sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
        if [[ -z "${FORCE_CUDA:-}" ]]; then
            if command -v nvcc >/dev/null && "$py" -c 'import torch,sys; sys.exit(not torch.cuda.is_available())'; then
                export FORCE_CUDA=1
            else
                export FORCE_CUDA=0
            fi
        fi
        log "FORCE_CUDA=$FORCE_CUDA (CUDA ops need nvcc and a visible GPU)"
        export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
        (cd "$src" && "$py" -m pip wheel -q --no-deps --no-build-isolation -w "$root/wheels" .)
        pip install -q --no-deps --no-index "$root/wheels"/mmcv-2.1.0-*.whl
        mmcv_ok || { log "mmcv built but its ops do not import"; exit 1; }
    fi
fi

check_env
touch "$stamp"
log "environment ready in $((SECONDS - start)) s: $env"
echo "$env"
