#!/usr/bin/env bash
# DePT GPU check, packed by `cargo xtask gpu-bundle` beside a stripped release `dept`, RTE rows and T5's tokenizer.
#
# Run on a Linux x86-64 machine with an NVIDIA GPU and PyTorch @TORCH_VERSION@ installed (pip's torch wheel):
#     bash run.sh                 # report on stdout, files in a temporary folder
#     DEPT_CHECK_OUT=DIR bash run.sh
# PYTHON (default python3) names the python whose torch is used: its lib/ folder is the libtorch `dept` loads, so
# nothing is installed. Exit status: 0 every check passed; 1 a check failed (the report says which); 2 this machine
# cannot run the check (no usable torch); 3 libtorch sees no CUDA device.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEPT="$HERE/dept"
EXPECTED_TORCH="@TORCH_VERSION@"
PYTHON="${PYTHON:-python3}"
OUT="${DEPT_CHECK_OUT:-$(mktemp -d -t dept-gpu-check.XXXXXX)}"
mkdir -p "$OUT" || { echo "gpu-check: error: cannot create $OUT" >&2; exit 2; }
REPORT="$OUT/report.md"
: >"$REPORT"
START=$SECONDS

say() { echo "$*" | tee -a "$REPORT"; }
stop() { # stop CODE MESSAGE
    echo "gpu-check: error: $2" | tee -a "$REPORT" >&2
    exit "$1"
}

# --- libtorch: the installed PyTorch's, found through its python ------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 ||
    stop 2 "no \`$PYTHON\` on PATH; set PYTHON to the python of a PyTorch $EXPECTED_TORCH install"
if ! TORCH_INFO="$("$PYTHON" -c 'import torch, os; print(torch.__version__); print(os.path.dirname(torch.__file__))' 2>"$OUT/python.err")"; then
    stop 2 "\`$PYTHON\` cannot import torch ($(tail -n 1 "$OUT/python.err")); set PYTHON to the python of a PyTorch $EXPECTED_TORCH install"
fi
TORCH_VERSION="$(sed -n 1p <<<"$TORCH_INFO")"
TORCH_DIR="$(sed -n 2p <<<"$TORCH_INFO")"
case "$TORCH_VERSION" in
"$EXPECTED_TORCH" | "$EXPECTED_TORCH"+*) ;;
*) stop 2 "\`$PYTHON\` has PyTorch $TORCH_VERSION ($TORCH_DIR); this bundle's dept is built for libtorch $EXPECTED_TORCH" ;;
esac
[ -f "$TORCH_DIR/lib/libtorch_cpu.so" ] || stop 2 "$TORCH_DIR/lib has no libtorch_cpu.so"
[ -f "$TORCH_DIR/lib/libtorch_cuda.so" ] ||
    stop 2 "$TORCH_DIR/lib has no libtorch_cuda.so: PyTorch $TORCH_VERSION there is a CPU-only build"
export LD_LIBRARY_PATH="$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if MISSING="$(ldd "$DEPT" 2>&1 | grep 'not found')"; then
    stop 2 "dept cannot be loaded with $TORCH_DIR/lib: $MISSING"
fi

say "# DePT GPU check"
say ""
say "- host: $(uname -srm); glibc $(ldd --version 2>/dev/null | head -n 1 | awk '{print $NF}')"
say "- PyTorch $TORCH_VERSION from \`$PYTHON\`: $TORCH_DIR"
say "- output folder: $OUT"
say ""

FAILED=()
# check NAME COMMAND...: runs a check, keeps its output in the report, records a failure.
check() {
    local name="$1"
    shift
    local t0=$SECONDS
    say "## $name"
    say '```'
    "$@" >"$OUT/step.log" 2>&1
    local status=$?
    tee -a "$REPORT" <"$OUT/step.log"
    say '```'
    if [ $status -eq 0 ]; then
        say "PASS: $name ($((SECONDS - t0)) s)"
    else
        say "FAIL: $name (exit $status, $((SECONDS - t0)) s)"
        FAILED+=("$name")
    fi
    say ""
    return $status
}

# --- 1. what dept sees ------------------------------------------------------------------------------------------
check "dept env" "$DEPT" env
grep -q "cuda available  true" "$OUT/step.log" ||
    stop 3 "libtorch $TORCH_VERSION sees no CUDA device here (is an NVIDIA driver loaded? nvidia-smi: $(nvidia-smi -L 2>&1 | head -n 1))"

# --- 2. CUDA against CPU on a tiny T5 ---------------------------------------------------------------------------
check "CUDA against CPU (tiny T5: loss, adapter gradients, greedy decodes)" \
    "$DEPT" selftest --device cuda --tolerance 1e-4

# --- 3. bf16 training on real RTE rows, killed and resumed, then evaluated ---------------------------------------
W="$OUT/train"
RUN="$W/run"
TRAIN=("$DEPT" train "$HERE/configs/rte.yaml" --model "$W/tiny" --data-dir "$HERE/data" --output-dir "$RUN"
    --set device=cuda --set precision=bf16 --set max_steps=400 --set eval_every=200 --set save_every=50
    --set batch_size=32 --set warmup_steps=50 --set log_every=10)
train_kill_resume() {
    rm -rf "$W" && mkdir -p "$W" || return 1
    "$DEPT" tiny-t5 --out "$W/tiny" --tokenizer "$HERE/tokenizer/tokenizer.json" --d-model 256 || return 1
    echo "\$ dept train … (bf16, 400 steps); killed with SIGKILL once step 120 is logged"
    "${TRAIN[@]}" --quiet >"$W/first.log" 2>&1 &
    local pid=$! step=0
    while kill -0 $pid 2>/dev/null; do
        step=$(tail -n 1 "$RUN/metrics.jsonl" 2>/dev/null | grep -o '"step":[0-9]*' | grep -o '[0-9]*')
        if [ "${step:-0}" -ge 120 ]; then
            kill -9 $pid
            break
        fi
        sleep 0.05
    done
    wait $pid
    local status=$?
    if [ $status -ne 137 ]; then
        echo "the first run was not killed (exit $status, last step ${step:-none}):"
        tail -n 5 "$W/first.log"
        return 1
    fi
    echo "killed at step $step (exit 137); resuming"
    "${TRAIN[@]}" 2>&1 | grep -E "resuming|step [0-9]+: validation|test|finished|error" || return 1
    grep -q '"step":400[,}]' "$RUN/metrics.jsonl" || { echo "the resumed run did not reach step 400"; return 1; }
    python_check_kinds || return 1
    echo "\$ dept eval --adapter $RUN/best --split validation"
    "$DEPT" eval --adapter "$RUN/best" --split validation
}
# Adapter and optimiser state stay fp32 under a bf16 backbone (read from the safetensors headers).
python_check_kinds() {
    "$PYTHON" - "$RUN/last" <<'EOF'
import sys, json, struct
def dtypes(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}
run = sys.argv[1]
kinds = {**dtypes(run + "/adapter_model.safetensors"), **dtypes(run + "/optimizer.safetensors")}
print("saved tensors:", ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
bad = {k: v for k, v in kinds.items() if v in ("BF16", "F16", "F64")}  # step counters are I64
sys.exit(f"not fp32: {bad}" if bad else 0)
EOF
}
check "bf16 training on RTE rows, SIGKILL + resume, eval" train_kill_resume

# --- 4. speed and memory: PT against DePT on T5-base/large and GPT-2 small/medium shapes -----------------------
check "the efficiency study: backbone alone, PT l=100, DePT m=0..80 at equal parameters (batch 16, s=256)" \
    "$DEPT" bench efficiency --device cuda --shape t5-base --shape t5-large --batch-size 16 --max-len 256 \
    --pt-len 100 --m 0,20,40,60,80 --out "$OUT/efficiency"
check "the same study on GPT-2 small and medium shapes (decoder-only: source + target share s), bf16 backbone" \
    "$DEPT" bench efficiency --device cuda --precision bf16 --shape gpt2 --shape gpt2-medium --batch-size 16 \
    --max-len 256 --pt-len 100 --m 0,20,40,60,80 --padding max-length --out "$OUT/efficiency-gpt2"

# --- 5. running out of GPU memory gives advice, not a crash -----------------------------------------------------
oom() {
    "$DEPT" bench efficiency --device cuda --shape t5-large --batch-size 16384 --max-len 256 --steps 1 \
        --warmup 0 --inference-batches 0 --m 60 --no-floor --padding max-length >"$OUT/oom.log" 2>&1
    local status=$?
    cat "$OUT/oom.log"
    [ $status -ne 0 ] && grep -q "CUDA ran out of memory. Lower batch_size" "$OUT/oom.log" &&
        ! grep -q "panicked" "$OUT/oom.log"
}
check "CUDA out of memory becomes advice" oom

say "total time: $((SECONDS - START)) s"
if [ ${#FAILED[@]} -eq 0 ]; then
    say "ALL CHECKS PASSED"
    exit 0
fi
say "FAILED: ${FAILED[*]}"
exit 1
