#!/usr/bin/env bash
# The prepared GPU check: on a machine with an NVIDIA GPU, a CUDA build of torch (>= 2.6), nvcc
# of torch's CUDA major version and the bundle of `make gpu-bundle` (no network), within about
# 8 minutes:
#   1. install    the bundle's wheels (--no-index --no-deps) into a private folder
#   2. mmcv       mmcv 2.1.0 with CUDA ops for this GPU only: a matching build at hand (the
#                 bundle's mmcv-prebuilt/ or this machine's cache), else built from the bundle's
#                 source archive on every core
#   3. benchmark  ConvNeXt-T inference at 224, AMP fp16, channels_last, batch 64: our fast and
#                 plain paths against timm's model (same settings), beside the paper's figures
#   4. gpu-tests  pytest -m gpu tests/test_gpu.py
#   5. train      50 AMP iterations of configs/detection/cascade_convnext_t_coco.py on synthetic
#                 COCO-sized data (iteration time, peak memory)
#   6. report     one JSON record (gpu_check.json) and a short table (gpu_check.md) in --out
# A failed stage is recorded and the next ones still run; the exit status is 1 when any failed.
#
#   tools/gpu/gpu_check.sh [--dry-run] [--bundle DIR] [--out DIR] [--budget SECONDS]
#
# --dry-run (any machine, no GPU needed; the test suite runs it): checks the bundle against its
# manifest and that its wheels install for CPython 3.12, prints the mmcv build plan, collects the
# gpu tests, writes a small training set and config and loads one sample through the pipeline,
# and writes the report; nothing is installed.
# Variables: PYTHON (default python3: the interpreter that has the machine's torch).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-python3}
bundle=$repo/gpu_bundle
out=$repo/work_dirs/gpu_check
budget=470  # seconds for all stages: under 8 minutes with the report
dry=0
while (( $# )); do
    case "$1" in
        --dry-run) dry=1 ;;
        --bundle) bundle=$(cd "$2" && pwd); shift ;;
        --out) mkdir -p "$2"; out=$(cd "$2" && pwd); shift ;;
        --budget) budget=$2; shift ;;
        *) echo "usage: $0 [--dry-run] [--bundle DIR] [--out DIR] [--budget SECONDS]" >&2
           exit 2 ;;
    esac
    shift
done
mkdir -p "$out"
work=$(mktemp -d /tmp/gpu_check.XXXXXX)
site=$work/site
# Built mmcv wheels stay here between runs on a warm machine (work_dirs/ is not in git).
cache=$repo/work_dirs/gpu_check_cache
: >"$out/stages.tsv"
: >"$out/gpu_check.log"
start=$SECONDS
failed=0
export PYTHONPATH="$site:$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
log() { echo "[gpu_check $((SECONDS - start))s] $*" | tee -a "$out/gpu_check.log"; }

# stage NAME LIMIT CMD...: run with a time limit (capped by what is left of the budget), keep the
# log's tail in gpu_check.log and one line in stages.tsv.
stage() {
    local name=$1 limit=$2 left rc t0 note
    shift 2
    left=$((budget - (SECONDS - start)))
    (( limit > left )) && limit=$left
    if (( limit <= 0 )); then
        printf '%s\tfailed\t0\tno time left in the %ss budget\n' "$name" "$budget" \
            >>"$out/stages.tsv"
        log "$name: skipped, the budget is spent"
        failed=1
        return 0
    fi
    log "$name: start (at most ${limit}s)"
    t0=$SECONDS
    rc=0
    # timeout runs programs, not functions: the stage function runs in a child bash.
    timeout --kill-after=10 "$limit" bash -c "set -euo pipefail; $*" >"$work/$name.log" 2>&1 \
        || rc=$?
    note=$(grep -E '^(NOTE|RESULT): ' "$work/$name.log" | tail -n 1 | cut -d' ' -f2- || true)
    { echo "----- $name (exit $rc) -----"; tail -n 40 "$work/$name.log"; } >>"$out/gpu_check.log"
    if (( rc == 0 )); then
        printf '%s\t%s\t%s\t%s\n' "$name" "$( ((dry)) && echo dry-run || echo ok)" \
            $((SECONDS - t0)) "$note" >>"$out/stages.tsv"
        log "$name: ok in $((SECONDS - t0))s ${note}"
    else
        (( rc == 124 || rc == 137 )) && note="timed out after ${limit}s. $note"
        printf '%s\tfailed\t%s\texit %s %s\n' "$name" $((SECONDS - t0)) "$rc" "$note" \
            >>"$out/stages.tsv"
        log "$name: FAILED (exit $rc) in $((SECONDS - t0))s ${note}; see gpu_check.log"
        failed=1
    fi
}

platform_args() {
    local p
    for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
        printf -- '--platform %s ' "$p"
    done
}

install_bundle() {
    "$PYTHON" tools/gpu/gpu_check.py verify-bundle "$bundle"
    if (( dry )); then
        # The real install's resolution for the GPU machine's interpreter, from this one.
        # shellcheck disable=SC2046
        "$PYTHON" -m pip install --dry-run --disable-pip-version-check -q --no-index --no-deps \
            --only-binary=:all: --python-version 3.12 --implementation cp $(platform_args) \
            --target "$site" "$bundle"/wheels/*.whl
        echo "RESULT: $(ls "$bundle"/wheels/*.whl | wc -l) wheels install for CPython 3.12"
    else
        "$PYTHON" -m pip install --disable-pip-version-check -q --no-index --no-deps \
            --no-compile --target "$site" "$bundle"/wheels/*.whl
        echo "RESULT: $(ls "$bundle"/wheels/*.whl | wc -l) wheels into $site"
    fi
}

mmcv_for_this_gpu() {
    local arch wheel
    if [[ -z "${TORCH_CUDA_ARCH_LIST:-}" ]]; then
        arch=$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())' \
               2>/dev/null || true)
        [[ -n "$arch" ]] && export TORCH_CUDA_ARCH_LIST=$arch
    fi
    if (( dry )); then
        echo "would build for: $(tools/build_mmcv.sh arch)"
        echo "compiler: $(tools/build_mmcv.sh toolkit "$PYTHON")"
        tar -tzf "$bundle/mmcv-2.1.0.tar.gz" mmcv-2.1.0/setup.py >/dev/null
        echo "RESULT: build plan only (dry run)"
        return 0
    fi
    for wheel in "$bundle"/mmcv-prebuilt/*.whl "$cache"/*.whl; do
        [[ -f "$wheel" ]] || continue
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$site" \
            "$wheel" >/dev/null 2>&1 || continue
        if tools/build_mmcv.sh check "$PYTHON" cuda; then
            echo "RESULT: mmcv at hand: $(basename "$(dirname "$wheel")")/$(basename "$wheel")"
            return 0
        fi
    done
    rm -rf "$site"/mmcv "$site"/mmcv-*.dist-info
    wheel=$(FORCE_CUDA=1 MMCV_SOURCE="$bundle/mmcv-2.1.0.tar.gz" \
            tools/build_mmcv.sh build "$PYTHON" "$work/mmcv-build")
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheel"
    tools/build_mmcv.sh check "$PYTHON" cuda
    mkdir -p "$cache"
    cp "$wheel" "$cache/"
    echo "RESULT: built for sm_${TORCH_CUDA_ARCH_LIST//./} ($(du -m "$wheel" | cut -f1) MB)"
}

benchmark() {
    local cmd=("$PYTHON" tools/analysis/benchmark.py --arch tiny --batch 64 --dtype fp16
               --channels-last --fast --also-plain --compare timm --compare-settings same
               --warmup 10 --repeats 50 --out "$out/benchmark.json")
    if (( dry )); then
        echo "would run: ${cmd[*]}"
        echo "RESULT: not run (dry run)"
        return 0
    fi
    "${cmd[@]}"
    echo "RESULT: $("$PYTHON" -c 'import json, sys; r = json.load(open(sys.argv[1]))
print(", ".join(f"{k} {v[\"images_per_s\"][\"median\"]:.0f} img/s" for k, v in r["results"].items()))' \
        "$out/benchmark.json")"
}

gpu_tests() {
    if (( dry )); then
        "$PYTHON" -m pytest -p no:cacheprovider -m gpu tests/test_gpu.py --collect-only -q
        echo "RESULT: collected only (dry run)"
        return 0
    fi
    "$PYTHON" -m pytest -p no:cacheprovider -m gpu tests/test_gpu.py -rA -s \
        --junitxml "$out/gpu_tests.xml"
}

train() {
    if (( dry )); then
        "$PYTHON" tools/gpu/gpu_check.py train-setup "$work/train" --images 2 --size 160
        echo "would run: $PYTHON tools/train.py $work/train/cascade_convnext_t_amp_50it.py --amp"
        echo "RESULT: data and config checked (dry run)"
        return 0
    fi
    "$PYTHON" tools/gpu/gpu_check.py train-setup "$work/train" --images 40 \
        --workers "$(( $(nproc) > 8 ? 8 : $(nproc) ))"
    "$PYTHON" tools/train.py "$work/train/cascade_convnext_t_amp_50it.py" --amp \
        --work-dir "$work/train/run"
    "$PYTHON" tools/gpu/gpu_check.py train-summary "$work/train/run" \
        "$out/train_summary.json"
    echo "RESULT: $("$PYTHON" -c 'import json, sys; s = json.load(open(sys.argv[1]))
print(f"{s[\"median_iter_s\"]:.3f} s/iter, peak {s[\"peak_memory_mib\"]} MiB")' \
        "$out/train_summary.json")"
}

cd "$repo"
export PYTHON bundle out work site cache dry
export -f platform_args install_bundle mmcv_for_this_gpu benchmark gpu_tests train
log "$( ((dry)) && echo 'DRY RUN: ' )bundle $bundle, out $out, python $("$PYTHON" -c \
    'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())')"
stage install 60 install_bundle
stage mmcv 300 mmcv_for_this_gpu
stage benchmark 90 benchmark
stage gpu-tests 150 gpu_tests
stage train 150 train
"$PYTHON" tools/gpu/gpu_check.py report "$out" >/dev/null 2>>"$out/gpu_check.log" \
    || { log "report: FAILED"; failed=1; }
log "done in $((SECONDS - start))s; $( ((failed)) && echo 'some stage FAILED' || echo 'all stages ok')"
cat "$out/gpu_check.md" 2>/dev/null || true
rm -rf "$work"
exit "$failed"
