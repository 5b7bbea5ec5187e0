#!/usr/bin/env bash
# The GPU checks of the training issue, as one script for a lent GPU machine:
#   1. bench/train_gpu.py: SFT and GRPO steps on the Qwen2-VL-2B architecture (random weights, bf16);
#   2. a one-GPU smoke run of `python -m training sft` under `accelerate launch` with the FSDP
#      config (the tiny model), so the accelerate config is exercised on a real GPU.
# Usage: bench/gpu_check.sh [OUTDIR]   (logs go to OUTDIR, default $OUT or /tmp/gpu-check)
# Python packages the machine lacks can travel as wheels in .whl/ (see README, "GPU checks").
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/gpu-check}}
mkdir -p "$out"
python=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
"$python" - <<'EOF' | tee -a "$out/gpu.txt"
import accelerate, datasets, peft, torch, transformers, trl
print("torch", torch.__version__, "transformers", transformers.__version__, "trl", trl.__version__,
      "datasets", datasets.__version__, "peft", peft.__version__, "accelerate", accelerate.__version__)
EOF

status=0
echo "== 1. bench/train_gpu.py (Qwen2-VL-2B sizes, bf16)"
timeout "${TRAIN_GPU_TIMEOUT:-360}" "$python" bench/train_gpu.py --steps 6 2>&1 \
  | grep -v "^{'" | tee "$out/train_gpu.log" || status=1

echo "== 2. accelerate launch (fsdp.yaml, 1 process) -m training sft, tiny model"
scratch=$(mktemp -d)
"$python" -m training.tiny "$scratch/tiny" >/dev/null || status=1
"$python" - "$scratch/snapshot" <<'EOF' || status=1
import sys
from pathlib import Path
sys.path.insert(0, "bench")
from train_gpu import write_snapshot
write_snapshot(Path(sys.argv[1]), rows=8)
EOF
timeout "${FSDP_TIMEOUT:-180}" "$python" -m accelerate.commands.launch \
  --config_file training/configs/accelerate/fsdp.yaml --num_processes 1 \
  -m training sft --config training/configs/sft_tiny.yaml --snapshot_dir "$scratch/snapshot" \
  --model_name_or_path "$scratch/tiny/vlm" --output_dir "$scratch/runs/sft-fsdp" \
  --use_cpu false --bf16 true --max_steps 2 --eval_strategy no --save_strategy no 2>&1 \
  | tail -25 | tee "$out/fsdp.log" || status=1
ls "$scratch/runs/sft-fsdp" | tee -a "$out/fsdp.log"
exit $status
