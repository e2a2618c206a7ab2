#!/usr/bin/env bash
# Create (or reuse) the pinned Python environment this toolkit runs in.
#
#   tools/setup_env.sh            # prints the environment's path on its last line
#   tools/setup_env.sh --plan     # prints what it would use (key=value lines); builds nothing
#
# The environment lives outside the clone, keyed by a hash of the requirement files, this script,
# tools/build_mmcv.sh, the Python version, the torch it runs on and the kind of mmcv ops, so every
# clone on a machine (CI's fresh clones included) shares one build, a CPU-ops and a CUDA-ops
# build never share one, and a second run with nothing changed only checks that it still imports.
#
# mmcv 2.1.0 is the hard part (tools/build_mmcv.sh builds it): we take a matching prebuilt wheel
# when pip's find-links offers one and it imports against our torch with the wanted ops;
# otherwise we build it from the PyPI source and cache the wheel beside the environments.
#
# Variables:
#   CONVNEXT_ENV_ROOT     where environments live (default ~/.cache/convnext-dense)
#   PYTHON                the interpreter the environment is made from (default python3)
#   CONVNEXT_TORCH        pinned (default): install requirements/torch.txt into the environment.
#                         system: install no torch; reuse the torch and torchvision that $PYTHON
#                         imports (a GPU machine's own, say; torch >= 2.6). The environment sees
#                         $PYTHON's site-packages after its own, and its key names that torch.
#   FORCE_CUDA            1: mmcv with CUDA ops; 0: CPU ops only; unset: CUDA ops when
#                         `nvidia-smi -L` lists a GPU, else CPU ops (CI's path)
#   TORCH_CUDA_ARCH_LIST  the CUDA ops' architectures; unset: the GPU's, else 8.0;9.0
#   CUDA_HOME, CONVNEXT_CUDA_TOOLKIT   which CUDA compiler (see tools/build_mmcv.sh: the nvcc on
#                         PATH when its major version matches torch's, else NVIDIA's PyPI packages)
#   PIP_FIND_LINKS (pip's own; a folder holding an mmcv 2.1.0 wheel), MAX_JOBS (build parallelism)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
root=${CONVNEXT_ENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/convnext-dense}
log() { echo "[setup_env] $*" >&2; }
die() { log "$*"; exit 1; }
plan=0
case "${1:-}" in
    --plan) plan=1 ;;
    '') ;;
    *) die "usage: $0 [--plan]" ;;
esac

pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

torch_mode=${CONVNEXT_TORCH:-pinned}
case "$torch_mode" in
    pinned)
        torch_desc="pinned: $(grep -E '^torch' "$repo/requirements/torch.txt" | paste -sd ' ')"
        torch_version=$(sed -n 's/^torch==\([^ ]*\).*/\1/p' "$repo/requirements/torch.txt") ;;
    system)
        # version, the folder torch lies in, and the interpreter's site folders (for the .pth)
        sys_torch=$("$PYTHON" - <<'EOF'
import os
import site
import sys

import torch
if tuple(int(v) for v in torch.__version__.split('.')[:2]) < (2, 6):
    sys.exit(f'CONVNEXT_TORCH=system: torch {torch.__version__} is older than 2.6')
print(torch.__version__)
print(os.path.dirname(os.path.dirname(os.path.realpath(torch.__file__))))
dirs = site.getsitepackages() + [os.path.dirname(os.path.dirname(torch.__file__))]
print(os.pathsep.join(dict.fromkeys(d for d in dirs if os.path.isdir(d))))
EOF
        ) || die "CONVNEXT_TORCH=system: no usable torch in $PYTHON (see above)"
        torch_version=$(sed -n 1p <<<"$sys_torch")
        torch_desc="system: torch $torch_version from $(sed -n 2p <<<"$sys_torch")"
        sys_sites=$(sed -n 3p <<<"$sys_torch") ;;
    *) die "CONVNEXT_TORCH must be pinned or system, not '$torch_mode'" ;;
esac

case "${FORCE_CUDA:-}" in
    1) ops=cuda; ops_why="FORCE_CUDA=1" ;;
    0) ops=cpu; ops_why="FORCE_CUDA=0" ;;
    '') if nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
            ops=cuda; ops_why="nvidia-smi lists a GPU"
        else
            ops=cpu; ops_why="no NVIDIA GPU"
        fi ;;
    *) die "FORCE_CUDA must be 1, 0 or unset, not '$FORCE_CUDA'" ;;
esac
flavour=cpu
if [[ $ops == cuda ]]; then
    arch_info=$("$repo/tools/build_mmcv.sh" arch)
    arch=${arch_info%% *}
    flavour="cuda-sm$(tr -d '.' <<<"$arch" | tr ';' '_')"  # e.g. cuda-sm80_90
fi

key=$(cat "$repo"/requirements/*.txt "$repo/tools/setup_env.sh" "$repo/tools/build_mmcv.sh" \
      | { cat; echo "py$pyver"; echo "torch $torch_desc"; echo "ops $flavour"; } \
      | sha256sum | cut -c1-12)
env="$root/env-$key"
stamp="$env/.convnext-env-complete"
# Wheels we built, one folder per Python, torch and kind of ops (the file names cannot tell).
wheel_cache="$root/wheels/mmcv-2.1.0-py$pyver-torch$torch_version-$flavour"

if (( plan )); then
    echo "env=$env"
    echo "key=$key"
    echo "python=$pyver"
    echo "torch=$torch_desc"
    echo "mmcv_ops=$ops ($ops_why)"
    if [[ $ops == cuda ]]; then
        echo "cuda_arch_list=$arch (${arch_info#* })"
        if [[ $torch_mode == system ]]; then
            echo "cuda_toolkit=$("$repo/tools/build_mmcv.sh" toolkit "$PYTHON")"
        else
            echo "cuda_toolkit=chosen after installing torch (tools/build_mmcv.sh toolkit)"
        fi
    fi
    echo "built=$([[ -f $stamp ]] && echo yes || echo no)"
    exit 0
fi

check_env() {
    "$repo/tools/build_mmcv.sh" check "$env/bin/python" "$ops" mmdet mmseg mmengine timm
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
if [[ ! -x "$env/bin/python" ]]; then
    log "creating $env (python $pyver, torch $torch_desc, mmcv ops: $ops)"
    "$PYTHON" -m venv "$env"
fi
py="$env/bin/python"
pip() { "$py" -m pip --disable-pip-version-check "$@"; }
# Wheels a checkout may have beside it (../shared/wheels), after the user's own find-links.
export PIP_FIND_LINKS="${PIP_FIND_LINKS:-}"
[[ -d "$repo/../shared/wheels" ]] && PIP_FIND_LINKS+=" $(cd "$repo/../shared/wheels" && pwd)"

if [[ $torch_mode == system ]]; then
    # After the environment's own site-packages, so the pins below take precedence over the
    # interpreter's packages and only what we do not install (torch and its kin) comes from it.
    site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    IFS=: read -r -a dirs <<<"$sys_sites"
    for d in "${dirs[@]}"; do echo "import site; site.addsitedir('$d')"; done \
        > "$site/convnext_system_torch.pth"
    "$py" -c "import torch; assert torch.__version__ == '$torch_version'" \
        || die "the environment does not see $PYTHON's torch $torch_version"
    log "using the interpreter's torch $torch_version (CONVNEXT_TORCH=system)"
else
    log "installing torch (the largest step)"
    pip install -q -r "$repo/requirements/torch.txt"
fi
# Everything but mmcv first: importing mmcv needs mmengine, and mmcv's setup.py imports
# pkg_resources (setuptools < 81, pinned in runtime.txt).
log "installing the OpenMMLab stack, timm and test tools"
pip install -q -r "$repo/requirements/runtime.txt" -r "$repo/requirements/tests.txt" wheel ninja

mmcv_ok() { "$repo/tools/build_mmcv.sh" check "$py" "$ops" 2>/dev/null; }

if ! mmcv_ok; then
    cached=$(ls "$wheel_cache"/mmcv-2.1.0-*.whl 2>/dev/null | head -n 1 || true)
    if [[ -n "$cached" ]] && pip install -q --no-deps --force-reinstall "$cached" && mmcv_ok; then
        log "mmcv 2.1.0 ($ops ops) from the wheel built earlier: $cached"
    # A wheel offered through find-links (never from an index: PyPI only has the source).
    elif pip install -q --no-index --no-deps --force-reinstall 'mmcv==2.1.0' 2>/dev/null \
            && mmcv_ok; then
        log "mmcv 2.1.0 ($ops ops) installed from a prebuilt wheel offered via PIP_FIND_LINKS"
    else
        pip uninstall -q -y mmcv 2>/dev/null || true
        if [[ $ops == cuda ]]; then
            log "building mmcv 2.1.0 with CPU and CUDA ops for $arch (about 20 minutes on" \
                "2 cores for one architecture)"
            export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=$arch
        else
            log "building mmcv 2.1.0 from source with compiled CPU ops (about 10 minutes on 2 cores)"
            export FORCE_CUDA=0
        fi
        wheel=$("$repo/tools/build_mmcv.sh" build "$py" "$wheel_cache")
        # --force-reinstall: with CONVNEXT_TORCH=system, an mmcv of the reused interpreter
        # (other ops, outside this environment, left alone) would count as already installed.
        pip install -q --no-deps --no-index --force-reinstall "$wheel"
        "$repo/tools/build_mmcv.sh" check "$py" "$ops" \
            || die "mmcv built but its ops do not import"
        log "built $wheel ($(du -m "$wheel" | cut -f1) MB)"
    fi
fi

check_env
# Our C++ depthwise weight-gradient kernel (backbones/csrc) is built here with the other compiled
# parts, not by the first training run (about a minute on 2 cores; torch caches it by source).
log "building the depthwise weight-gradient kernel"
(cd "$repo" && "$env/bin/python" -W ignore -c 'import sys
from backbones.models.dwconv import _extension
sys.exit(0 if _extension() else 1)') \
    || log "warning: the kernel did not build; CPU training uses PyTorch's depthwise kernel"
touch "$stamp"
log "environment ready in $((SECONDS - start)) s: $env"
echo "$env"
