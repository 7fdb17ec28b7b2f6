#!/usr/bin/env bash
# The prepared GPU check: on one CUDA GPU, in under 8 minutes, everything written into one folder.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]           on a machine with a CUDA GPU; OUT_DIR default $OUT, else gpu_check
#   bash benchmarks/gpu_check.sh --tiny [OUT_DIR]    the same phases on the tiny sample on the CPU (a dry run, ~2 min)
#
# Phases, each under its own time limit (a phase that fails or runs out is recorded and the next one runs):
#   1. environment: nvidia-smi, python, torch, CUDA                                                   -> env.txt
#   2. the test suite with CUDA (tests marked for CUDA run; pytest-xdist spreads it when installed)    -> tests.txt
#   3. python -m benchmarks.run --preset=full: the full sample (step 0) and its dumps (step 1), then a training step of
#      each model (model 1 denoising, model 2 fine-tuning and MLM, ranking term off and on) in fp32 and with bf16
#      autocast (--amp), next to the same-shape matmuls alone; inference and evaluation on 2,000 questions
#                                                                          -> benchmark.md (the tables), benchmark.txt
#   4. model 1 on the full sample for TRAIN_MINUTES (default 1.5) with a validation every epoch, then its curve
#                                                                          -> model1.txt (stdout and log.txt), model1.png
#   summary.md: each phase's exit status and time, the training-throughput table and model 1's validation lines
#   (also printed at the end). 8 files in all; the sample, dumps and checkpoints go to WORK (default /tmp/gpu_check).
#
# Python packages: the project needs torch, numpy, scipy, sentencepiece, tqdm, fire and termcolor (fire's only
# dependency); matplotlib (the curve) and tensorboard are optional here. A GPU machine without network access that
# lacks fire and termcolor needs them as wheels. In the repo root, on a machine where pip works (/.whl/ is git-ignored):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl fire==0.7.1 termcolor==3.3.0
#
# then copy .whl to the GPU machine and start the command there with
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#       .whl/*.whl && export PYTHONPATH=/tmp/site || exit; bash benchmarks/gpu_check.sh
#
# (both are pure-Python py3-none-any wheels). The script checks the imports first and repeats this if one is missing.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TINY=0
if [[ "${1:-}" == "--tiny" ]]; then TINY=1; shift; fi
DEST="${1:-${OUT:-gpu_check}}"
WORK="${WORK:-/tmp/gpu_check}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if (( TINY )); then  # the CPU dry run: the same commands on the tiny sample
    PRESET=tiny GPU="--gpu=-1" TESTS="${TESTS:-tests/test_models.py}" QUESTIONS=50 STEPS=2
    TRAIN_MINUTES="${TRAIN_MINUTES:-0.3}" LIMITS=(300 300 120)
else
    PRESET=full GPU="" TESTS="${TESTS:-tests}" QUESTIONS=2000 STEPS=10
    TRAIN_MINUTES="${TRAIN_MINUTES:-1.5}" LIMITS=(120 190 140)  # seconds for phases 2, 3, 4: under 8 min in all
fi
mkdir -p "$DEST" "$WORK"
SUMMARY="$DEST/summary.md"
PHASES=()

# phase NAME LIMIT_S LOG COMMAND...: run COMMAND under `timeout`, output to LOG (and the terminal); record rc and time
phase() {
    local name="$1" limit="$2" log="$3"; shift 3
    local start=$SECONDS
    echo "== $name (limit ${limit}s): $*" | tee -a "$log"
    timeout --signal=INT --kill-after=20 "$limit" "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    PHASES+=("| $name | $rc$([[ $rc == 124 ]] && echo ' (time limit)') | $((SECONDS - start)) |")
    return 0
}

if ! "$PY" -c "import fire, termcolor, torch, numpy, scipy, sentencepiece, tqdm" 2>"$DEST/env.txt"; then
    cat "$DEST/env.txt"
    echo "error: a required Python package is missing; see the header of benchmarks/gpu_check.sh for the wheels" >&2
    sed -n '/^# Python packages/,/^# (both/p' "$0" >&2
    exit 1
fi

environment() {
    (command -v nvidia-smi >/dev/null && nvidia-smi) || echo "no nvidia-smi"
    "$PY" - <<'EOF'
import importlib.util, os, sys
import torch
print(sys.version.split()[0], sys.executable)
print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else "")
for name, what in (("matplotlib", "the curve"), ("tensorboard", "TensorBoard scalars"), ("xdist", "parallel tests")):
    print(f"{name}: {'yes' if importlib.util.find_spec(name) else 'no (no ' + what + ')'}")
print("cpus", len(os.sched_getaffinity(0)))
EOF
}
start=$SECONDS
environment 2>&1 | tee -a "$DEST/env.txt"
PHASES+=("| 1 environment | ${PIPESTATUS[0]} | $((SECONDS - start)) |")

XDIST=()
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-n 4)
phase "2 tests" "${LIMITS[0]}" "$DEST/tests.txt" "$PY" -m pytest -q -p no:cacheprovider "${XDIST[@]}" $TESTS

phase "3 benchmark ($PRESET)" "${LIMITS[1]}" "$DEST/benchmark.txt" "$PY" -m benchmarks.run --preset=$PRESET \
    --work_dir="$WORK/bench" $GPU --train_steps=$STEPS --quality=False --inference_questions=$QUESTIONS
[[ -f "$WORK/bench/benchmark.md" ]] && cp "$WORK/bench/benchmark.md" "$DEST/benchmark.md"

RUN="$WORK/bench/output/songs_tags_artists"
[[ -d "$RUN" ]] && mv "$RUN" "$RUN.before-$(date +%s)"  # a check never continues an earlier check's run
phase "4 model 1, $TRAIN_MINUTES min" "${LIMITS[2]}" "$DEST/model1.txt" "$PY" \
    trainer/songs_tags_artists_model_trainer.py --dataset_dir="$WORK/bench/dataset" --output_dir="$WORK/bench/output" \
    $GPU --max_minutes="$TRAIN_MINUTES" --valid_every=1 --log_every=100 --progress=False --tensorboard=False
if [[ -f "$RUN/log.txt" ]]; then
    { echo "== log.txt"; cat "$RUN/log.txt"; } >> "$DEST/model1.txt"
    "$PY" -m reports.curves --output_dir="$WORK/bench/output" >/dev/null 2>&1 \
        && cp "$WORK/bench/output/curves/songs_tags_artists.png" "$DEST/model1.png"
fi

{
    echo "# GPU check ($PRESET sample$( ((TINY)) && echo ', CPU dry run'))"
    echo
    echo "$(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(grep -m1 '^torch' "$DEST/env.txt")"
    echo
    echo "| phase | exit status | seconds |"
    echo "|---|---:|---:|"
    printf '%s\n' "${PHASES[@]}"
    echo
    echo "Tests: $(grep -E '(passed|failed|error)' "$DEST/tests.txt" | tail -1)"
    echo
    [[ -f "$DEST/benchmark.md" ]] && sed -n '/^## Training throughput/,/^## Inference/p' "$DEST/benchmark.md" | sed '$d'
    echo "## Model 1 on the $PRESET sample ($TRAIN_MINUTES min): validation"
    echo
    grep -E '^\[songs_tags_artists\] epoch ' "$RUN/log.txt" 2>/dev/null | sed 's/^/    /' || echo "    (no validation line)"
} > "$SUMMARY"
cat "$SUMMARY"
echo "files: $(ls "$DEST" | tr '\n' ' ')"
