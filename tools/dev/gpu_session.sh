#!/usr/bin/env bash
# One-shot GPU session for a bare CUDA machine (tools/dev/README.md, "A GPU session").
#
#   tools/dev/gpu_session.sh tests   # phase A: tests/test_gpu, then the whole suite (xdist)
#   tools/dev/gpu_session.sh bench   # phase B: the --device cuda benchmarks with peak memory,
#                                    # a short tools/train.py run for time and data_time
#   tools/dev/gpu_session.sh all     # A then B in one command (one machine start)
#   tools/dev/gpu_session.sh compile # phase C: torch.compile (inductor) of RetinaNet and FCOS
#                                    # against eager, channels_last, with the compile times
#
# Run from the repo root with $OUT set (logs go there: at most 7 small files). Wheels of the
# packages the machine lacks are read from .whl/*.whl, coco128 from .whl/coco128 when it was
# carried. Every step runs under its own `timeout`, capped by what is left of its phase's
# budget (GPU_SESSION_TESTS_BUDGET, default 330 s; GPU_SESSION_BENCH_BUDGET, default 300 s;
# GPU_SESSION_COMPILE_BUDGET, default 540 s)
# and of the whole run's (GPU_SESSION_BUDGET, default 560 s, under the device's 600 s per
# command), so the script always reaches its end; each step's exit status goes to
# $OUT/status.txt and a failed step never stops the later ones. For a check on a machine that
# already has the packages: GPU_SESSION_DRY=1 skips the installs, GPU_SESSION_SUITE names the
# test paths of the suite step (default tests), GPU_SESSION_WORKERS its xdist workers
# (default 8), GPU_SESSION_BENCH_ARGS replaces the benchmarks' device arguments.
set -u -o pipefail

MODE=${1:-all}
case "$MODE" in
    tests | bench | all | compile) ;;
    *) echo "usage: $0 tests|bench|all|compile" >&2; exit 2 ;;
esac
if [ -z "${OUT:-}" ]; then
    echo "OUT is not set: it names the folder the logs go to" >&2
    exit 2
fi
if [ ! -f setup.py ] || [ ! -d detlab ]; then
    echo "run from detlab's repo root (no setup.py or detlab/ in $PWD)" >&2
    exit 2
fi
mkdir -p "$OUT"
PY=${PYTHON:-python3}
START=$(date +%s)
END_OF_RUN=$((START + ${GPU_SESSION_BUDGET:-560}))
DEADLINE=$END_OF_RUN
STATUS="$OUT/status.txt"
SESSION_LOG="$OUT/session.log"
: >"$STATUS"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg

log() { echo "[$(date -u +%H:%M:%S) +$(($(date +%s) - START))s] $*" | tee -a "$SESSION_LOG"; }

# step NAME TIMEOUT LOGFILE COMMAND...: run COMMAND under `timeout` (TIMEOUT seconds or what is
# left of the budget, whichever is less; SIGINT first so pytest writes its summary and junit
# file, SIGKILL 20 s later), append its output to LOGFILE and its exit status to status.txt.
step() {
    local name=$1 limit=$2 logfile=$3
    shift 3
    local left=$((DEADLINE - $(date +%s)))
    if [ "$left" -lt 15 ]; then
        log "SKIP $name: ${left}s of the budget left"
        echo "$name skipped (budget)" >>"$STATUS"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    log "START $name (timeout ${limit}s): $*"
    local begin=$(date +%s)
    timeout -s INT -k 20 "$limit" "$@" 2>&1 | tee -a "$logfile"
    local rc=$?
    local took=$(($(date +%s) - begin))
    [ "$rc" -eq 124 ] && rc="124 (timed out)"
    log "END $name rc=$rc in ${took}s"
    echo "$name rc=$rc ${took}s" >>"$STATUS"
}

# phase SECONDS: the steps that follow end by now + SECONDS, and by the end of the run.
phase() {
    DEADLINE=$(($(date +%s) + $1))
    [ "$DEADLINE" -gt "$END_OF_RUN" ] && DEADLINE=$END_OF_RUN
    return 0
}

# --- install -------------------------------------------------------------------------------
# The wheels go into the Python that runs the tests, not only onto PYTHONPATH: tests start the
# tools with sys.executable and PYTHONPATH set to the repo root alone (tests/helpers.py), so a
# subprocess sees only what that interpreter's site-packages hold. If pip cannot write there,
# the wheels go to /tmp/site and a .pth file in site-packages (or, failing that, PYTHONPATH)
# points at it.
install() {
    if [ "${GPU_SESSION_DRY:-0}" = 1 ]; then
        log "GPU_SESSION_DRY=1: no installs"
        export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
        return 0
    fi
    shopt -s nullglob
    local wheels=(.whl/*.whl)
    shopt -u nullglob
    if [ ${#wheels[@]} -eq 0 ]; then
        log "no wheels in .whl/ (was .whl named in carry?)"
    elif $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
            "${wheels[@]}" >>"$SESSION_LOG" 2>&1; then
        log "installed ${#wheels[@]} wheels into $($PY -c 'import sys; print(sys.prefix)')"
    else
        log "pip could not install into that Python; trying --target /tmp/site"
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site "${wheels[@]}" >>"$SESSION_LOG" 2>&1
        local site
        site=$($PY -c 'import site; print(site.getsitepackages()[0])')
        if echo /tmp/site >"$site/detlab_gpu_session.pth" 2>/dev/null; then
            log "/tmp/site added through $site/detlab_gpu_session.pth"
        else
            export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
            log "only on PYTHONPATH: tests that start tools in subprocesses will not find them"
        fi
    fi
    # detlab itself, editable, without fetching anything (no index there).
    $PY -m pip install -q --no-index --no-deps --no-build-isolation -e . >>"$SESSION_LOG" 2>&1 \
        || log "pip install -e . failed; detlab is found through PYTHONPATH only"
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
    # coco128 where tests/helpers.py looks for it (beside the repo, in ../shared/data).
    if [ -d .whl/coco128 ] && [ ! -e ../shared/data/coco128 ]; then
        mkdir -p ../shared/data && ln -s "$PWD/.whl/coco128" ../shared/data/coco128 \
            && log "coco128 linked at $(cd ../shared/data && pwd)/coco128"
    fi
}

versions() {
    {
        nvidia-smi || echo "nvidia-smi failed"
        $PY - <<'EOF'
import importlib, platform, sys
print('python', sys.version.split()[0], sys.executable, platform.machine())
for name in ('torch', 'torchvision', 'numpy', 'cv2', 'mmengine', 'mmcv', 'pycocotools',
             'addict', 'yapf', 'termcolor', 'pytest', 'xdist', 'onnx', 'onnxruntime',
             'tensorboard', 'detlab'):
    try:
        module = importlib.import_module(name)
        print(f'{name:12s}', getattr(module, '__version__', '?'), module.__file__)
    except Exception as error:  # report every missing package, not only the first
        print(f'{name:12s} MISSING: {error!r}')
import torch
print('cuda available', torch.cuda.is_available(), 'torch.version.cuda', torch.version.cuda,
      'cudnn', torch.backends.cudnn.version())
if torch.cuda.is_available():
    print('device', torch.cuda.get_device_name(), torch.cuda.get_device_capability())
from mmengine.device import get_device
print('mmengine device', get_device())
EOF
        [ -d ../shared/data/coco128 ] && echo "coco128 present" || echo "coco128 absent: its tests skip"
    } 2>&1 | tee -a "$SESSION_LOG"
}

# --- phase A: tests ------------------------------------------------------------------------
tests() {
    local pytest=($PY -m pytest -q -rfEs -p no:cacheprovider --durations=15)
    # Two torch threads per xdist worker: 8 workers fill the 16 cores without oversubscribing.
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
    step test_gpu 150 "$OUT/test_gpu.log" "${pytest[@]}" -n 6 --dist load \
        --junitxml="$OUT/test_gpu.xml" tests/test_gpu
    step suite 600 "$OUT/suite.log" "${pytest[@]}" -n "${GPU_SESSION_WORKERS:-8}" \
        --dist loadfile --ignore=tests/test_gpu --junitxml="$OUT/suite.xml" \
        ${GPU_SESSION_SUITE:-tests}
}

# --- phase B: benchmarks -------------------------------------------------------------------
bench() {
    local bench_log="$OUT/bench.log"
    local gpu=(${GPU_SESSION_BENCH_ARGS:---device cuda --amp bf16 --batch 8 --size 800})
    step retinanet 100 "$bench_log" $PY benchmarks/bench_retinanet.py "${gpu[@]}" \
        --rounds 15 --warmup 3 --channels-last
    step fcos 60 "$bench_log" $PY benchmarks/bench_fcos.py "${gpu[@]}" --rounds 10 --warmup 2
    step faster_rcnn 60 "$bench_log" $PY benchmarks/bench_faster_rcnn.py "${gpu[@]}" \
        --rounds 10 --warmup 2
    step mask_rcnn 75 "$bench_log" $PY benchmarks/bench_mask_rcnn.py "${gpu[@]}" \
        --rounds 10 --warmup 2
    # The quickstart through tools/train.py on the GPU: the logger's time and data_time.
    local work=/tmp/gpu_session_train
    step train_quickstart 60 "$bench_log" $PY tools/train.py \
        configs/quickstart/retinanet_r18_fpn_shapes.py --amp bf16 --work-dir "$work" \
        --cfg-options train_cfg.max_iters=400 train_cfg.val_interval=400 \
        default_hooks.logger.interval=50 default_hooks.checkpoint.interval=400
    # Last: torch.compile takes minutes to compile; whatever budget is left goes to it.
    step retinanet_compile 240 "$bench_log" $PY benchmarks/bench_retinanet.py "${gpu[@]}" \
        --rounds 10 --warmup 2 --channels-last --compile \
        --models detlab-channels_last,detlab-channels_last-compiled
}

# --- phase C: torch.compile ----------------------------------------------------------------
# compile=True (backbone and neck) and compile=dict(parts=[backbone, neck, head]) with
# inductor, beside eager channels_last, all against torchvision (the issue's peer), all
# channels_last, on fixed-size batches;
# each benchmark prints every model's first train step and first inference (the compile
# time) beside the medians.
compile_bench() {
    local bench_log="$OUT/compile.log"
    local gpu=(${GPU_SESSION_BENCH_ARGS:---device cuda --amp bf16 --batch 8 --size 800})
    step retinanet_compile 300 "$bench_log" $PY benchmarks/bench_retinanet.py "${gpu[@]}" \
        --rounds 10 --warmup 2 --channels-last --compile --compile-head \
        --models detlab-channels_last,detlab-channels_last-compiled,detlab-channels_last-compiled+head
    step fcos_compile 200 "$bench_log" $PY benchmarks/bench_fcos.py "${gpu[@]}" \
        --rounds 10 --warmup 2 --channels-last --compile --compile-head \
        --models detlab-channels_last,detlab-channels_last-compiled,detlab-channels_last-compiled+head
}

log "gpu_session.sh $MODE in $PWD, budget ${GPU_SESSION_BUDGET:-560}s, logs in $OUT"
install
versions
if [ "$MODE" = compile ]; then
    phase "${GPU_SESSION_COMPILE_BUDGET:-540}"
    compile_bench
fi
if [ "$MODE" = tests ] || [ "$MODE" = all ]; then
    phase "${GPU_SESSION_TESTS_BUDGET:-330}"
    tests
fi
if [ "$MODE" = bench ] || [ "$MODE" = all ]; then
    phase "${GPU_SESSION_BENCH_BUDGET:-300}"
    bench
fi
log "done: $(tr '\n' ';' <"$STATUS")"
cat "$STATUS"
