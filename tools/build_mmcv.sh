#!/usr/bin/env bash
# mmcv 2.1.0 with compiled ops for the torch of a given interpreter: the one place that knows how
# (used by tools/setup_env.sh and tools/gpu/gpu_check.sh).
#
#   tools/build_mmcv.sh arch                      # CUDA architectures: "<list> <where from>"
#   tools/build_mmcv.sh toolkit PYTHON            # "nvcc <CUDA_HOME> <version>" or "pypi - <version>"
#   tools/build_mmcv.sh check PYTHON cpu|cuda [MODULE...]  # exit 0 when PYTHON's mmcv has
#                                                 # exactly such ops (and the modules import)
#   tools/build_mmcv.sh build PYTHON WHEEL_DIR    # build a wheel into WHEEL_DIR, print its path
#
# Why a build: PyPI has only mmcv's source, its setup.py asks for C++14/17 while current torch
# headers need C++20 (raised here), and under pip's build isolation it silently skips the ops.
#
# Variables:
#   FORCE_CUDA=1          build the CUDA ops too (`build`); anything else builds CPU ops only,
#                         with the GPUs hidden (mmcv's setup.py builds CUDA ops whenever it sees one)
#   TORCH_CUDA_ARCH_LIST  architectures, e.g. "9.0" or "8.0;9.0"; unset: the compute capability
#                         of the GPUs nvidia-smi lists, else DEFAULT_ARCHS (A100 and H100/H200)
#   CUDA_HOME             a toolkit to try before the nvcc on PATH (then /usr/local/cuda)
#   CONVNEXT_CUDA_TOOLKIT auto (default): that nvcc when its CUDA major version equals
#                         torch.version.cuda's, else NVIDIA's PyPI compiler packages of exactly
#                         torch's CUDA version, installed into PYTHON's environment; pypi: always those
#   MMCV_SOURCE           an mmcv-2.1.0.tar.gz to build (default: downloaded through pip)
#   MAX_JOBS              parallel compile jobs (default: all cores)
set -euo pipefail

DEFAULT_ARCHS="8.0;9.0"
log() { echo "[build_mmcv] $*" >&2; }
die() { log "$*"; exit 1; }

arch_list() {
    if [[ -n "${TORCH_CUDA_ARCH_LIST:-}" ]]; then
        echo "$(tr -s ' ,' ';;' <<<"$TORCH_CUDA_ARCH_LIST") TORCH_CUDA_ARCH_LIST"
        return
    fi
    local caps
    caps=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null \
           | tr -d ' ' | grep -E '^[0-9]+\.[0-9]+$' | sort -uV | paste -sd ';' || true)
    if [[ -n "$caps" ]]; then
        echo "$caps detected-gpu"
    else
        echo "$DEFAULT_ARCHS default"
    fi
}

torch_cuda() {
    "$1" -c 'import torch; print(torch.version.cuda or "")'
}

nvcc_release() {  # "13.0" from "Cuda compilation tools, release 13.0, V13.0.88"
    "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9.]*\),.*/\1/p' | head -n 1
}

nvcc_home() {  # the real toolkit root: /usr/local/bin/nvcc may be a wrapper script
    local top
    top=$("$1" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n 1)
    [[ -n "$top" ]] || top=$(dirname "$(readlink -f "$1")")/..
    (cd "$top" && pwd -P)
}

# torch's CUDA headers include the math libraries' (ATen/cuda/CUDAContextLight.h): a toolkit
# of the compiler alone (nvcc, crt, nvvm, cccl) cannot build against them. Prints what is missing.
missing_headers() {
    local h
    for h in cusparse.h cublas_v2.h cusolverDn.h; do
        [[ -e "$1/include/$h" ]] || echo -n "$h "
    done
}

toolkit() {
    local py=$1 want nvcc rel home lacking
    want=$(torch_cuda "$py")
    [[ -n "$want" ]] || die "the torch of $py is not a CUDA build: no CUDA ops can be built for it"
    if [[ "${CONVNEXT_CUDA_TOOLKIT:-auto}" != pypi ]]; then
        if [[ -n "${CUDA_HOME:-}" && -x "$CUDA_HOME/bin/nvcc" ]]; then
            nvcc=$CUDA_HOME/bin/nvcc
        else  # torch's own last guess is /usr/local/cuda too
            nvcc=$(command -v nvcc || command -v /usr/local/cuda/bin/nvcc || true)
        fi
        if [[ -n "$nvcc" ]]; then
            rel=$(nvcc_release "$nvcc")
            if [[ -n "$rel" && "${rel%%.*}" == "${want%%.*}" ]]; then
                home=$(nvcc_home "$nvcc")
                lacking=$(missing_headers "$home")
                if [[ -z "$lacking" ]]; then
                    echo "nvcc $home $rel"
                    return
                fi
                # The PyPI layout also links the headers of torch's own nvidia packages.
                log "$home has no ${lacking}(torch's CUDA headers need them):" \
                    "using NVIDIA's PyPI compiler packages"
            else
                log "$nvcc is CUDA ${rel:-?}, torch wants $want: using NVIDIA's PyPI compiler" \
                    "packages"
            fi
        fi
    fi
    echo "pypi - $want"
}

# NVIDIA's compiler packages of exactly torch's CUDA version, laid out as one CUDA_HOME inside
# PYTHON's environment (symbolic links into its site-packages); prints that CUDA_HOME.
pypi_toolkit() {
    local py=$1 ver=$2 home pkgs
    if (( ${ver%%.*} >= 13 )); then
        pkgs=(nvidia-cuda-nvcc nvidia-cuda-crt nvidia-nvvm nvidia-cuda-cccl nvidia-cuda-runtime)
    else  # CUDA 12 ships crt and nvvm inside nvcc's package, all with a -cu12 suffix
        pkgs=(nvidia-cuda-nvcc-cu12 nvidia-cuda-cccl-cu12 nvidia-cuda-runtime-cu12)
    fi
    log "installing ${pkgs[*]} ==$ver.* into $py's environment"
    "$py" -m pip install -q --disable-pip-version-check "${pkgs[@]/%/==$ver.*}" >&2
    home=$("$py" -c 'import sys; print(sys.prefix)')/cuda-$ver
    "$py" - "$home" >&2 <<'EOF'
import glob
import os
import sys

home = sys.argv[1]
# Every nvidia/<package>/{bin,include,lib,nvvm} this interpreter sees, its own environment first
# (CUDA 13 wheels share nvidia/cu13, CUDA 12 ones have a folder each); first one wins.
roots = [r for p in sys.path for r in sorted(glob.glob(os.path.join(p, 'nvidia', '*')))]
for sub, dst in (('bin', 'bin'), ('include', 'include'), ('lib', 'lib64'), ('nvvm', 'nvvm')):
    os.makedirs(os.path.join(home, dst), exist_ok=True)
    for root in roots:
        src = os.path.join(root, sub)
        for name in sorted(os.listdir(src)) if os.path.isdir(src) else ():
            link = os.path.join(home, dst, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join(src, name), link)
lib = os.path.join(home, 'lib64')
# The linker asks for libcudart.so, the wheels ship libcudart.so.13 and the like.
for name in os.listdir(lib):
    if '.so.' in name:
        plain = os.path.join(lib, name.split('.so.')[0] + '.so')
        if not os.path.lexists(plain):
            os.symlink(name, plain)
if not os.path.lexists(os.path.join(home, 'lib')):
    os.symlink('lib64', os.path.join(home, 'lib'))
nvcc = os.path.join(home, 'bin', 'nvcc')
if not os.access(nvcc, os.X_OK):
    sys.exit(f'no nvcc in {home}/bin after installing the compiler packages')
EOF
    echo "$home"
}

check() {
    local py=$1 want=$2
    shift 2
    "$py" - "$want" "$@" <<'EOF'
import importlib
import sys

import mmcv
import mmcv._ext  # noqa: F401  (fails when mmcv was built without ops)
import torch
from mmcv.ops import get_compiling_cuda_version, nms

want = sys.argv[1]
for module in sys.argv[2:]:  # one interpreter start for the whole environment check
    importlib.import_module(module)
built = get_compiling_cuda_version()  # 'not available' in a CPU-ops build
if mmcv.__version__ != '2.1.0':
    sys.exit(f'mmcv {mmcv.__version__}, not 2.1.0')
if want == 'cpu' and built != 'not available':
    sys.exit(f'mmcv has CUDA {built} ops; this environment is for CPU ops')
if want == 'cuda':
    torch_cuda = torch.version.cuda or ''
    if built == 'not available' or built.split('.')[0] != torch_cuda.split('.')[0]:
        sys.exit(f'mmcv ops built for CUDA {built}, torch {torch.__version__} is CUDA {torch_cuda}')
    if torch.cuda.is_available():  # the build must hold a kernel for this GPU's architecture
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]], device='cuda')
        nms(boxes, torch.tensor([0.9, 0.8], device='cuda'), 0.5)
EOF
}

build() {
    local py=$1 out=$2 work src wheel arch tk kind home ver
    mkdir -p "$out"
    work=$(mktemp -d)
    # Expanded now: the trap runs at exit, where this function's locals are gone.
    trap "rm -rf '$work'" EXIT
    if [[ -n "${MMCV_SOURCE:-}" ]]; then
        cp "$MMCV_SOURCE" "$work/mmcv-2.1.0.tar.gz"
    else
        "$py" -m pip download -q --disable-pip-version-check --no-deps --no-binary mmcv \
            --no-build-isolation -d "$work" 'mmcv==2.1.0' >&2
    fi
    tar -xzf "$work/mmcv-2.1.0.tar.gz" -C "$work"
    src=$work/mmcv-2.1.0
    sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
    # torch compiles in parallel only through ninja: the environment's, or the ninja package's.
    PATH=$(dirname "$py"):$PATH
    if ! command -v ninja >/dev/null; then
        PATH=$("$py" -c 'import ninja; print(ninja.BIN_DIR)' 2>/dev/null || true):$PATH
    fi
    command -v ninja >/dev/null || log "no ninja found: the build compiles one file at a time"
    if [[ "${FORCE_CUDA:-0}" == 1 ]]; then
        arch=$(arch_list)
        arch=${arch%% *}
        tk=$(toolkit "$py")  # an assignment, so that its failure stops the build
        read -r kind home ver <<<"$tk"
        [[ "$kind" == pypi ]] && home=$(pypi_toolkit "$py" "$ver")
        export TORCH_CUDA_ARCH_LIST=$arch CUDA_HOME=$home PATH=$home/bin:$PATH
        log "CUDA ops for $arch with $home/bin/nvcc (CUDA $ver), $MAX_JOBS jobs"
    else
        export FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=
        log "CPU ops only, $MAX_JOBS jobs"
    fi
    (cd "$src" && "$py" -m pip wheel -q --disable-pip-version-check --no-deps \
        --no-build-isolation -w "$work/dist" . >&2)
    wheel=$(ls "$work"/dist/mmcv-2.1.0-*.whl)
    mv "$wheel" "$out/"
    echo "$out/$(basename "$wheel")"
}

cmd=${1:-}
shift || true
case "$cmd" in
    arch) arch_list ;;
    toolkit) toolkit "$@" ;;
    check) check "$@" ;;
    build) build "$@" ;;
    *) die "usage: $0 arch | toolkit PYTHON | check PYTHON cpu|cuda [MODULE...] |" \
           "build PYTHON WHEEL_DIR" ;;
esac
