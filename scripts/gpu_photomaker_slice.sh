#!/usr/bin/env bash
# PhotoMaker on a small slice of celeb-25id-40prompt (2 IDs x 4 prompts x 4 images, 1024x1024, DDIM 50,
# CFG 5) on one GPU, then the time per image. Needs the weights in the triptych cache first:
#   triptych weights fetch sdxl_base_1_0 && triptych weights fetch photomaker_v1
# (offline: download the files and 'triptych weights import NAME PATH').
# Usage: scripts/gpu_photomaker_slice.sh REFS_DIR [OUT_DIR] [METHOD]   (REFS_DIR: alan_turing/, albert_einstein/, ...)
set -euo pipefail
REFS=${1:?usage: $0 REFS_DIR [OUT_DIR] [METHOD]}
OUT=${2:-runs/photomaker-slice}
METHOD=${3:-photomaker-v1}
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
triptych generate --method "$METHOD" --refs "$REFS" --out "$OUT" --ids 2 --prompts 4 --device cuda
python - "$OUT" <<'PY'
import json, sys
summary = json.load(open(f"{sys.argv[1]}/.generation/generation.json"))
times = [i["seconds"] for i in summary["images"]]
print(f"{summary['method']}: {len(times)} images, {summary['seconds_per_image']['mean']:.2f} s per image "
      f"(min {min(times):.2f}, max {max(times):.2f}; the first includes CUDA warm-up), "
      f"dtype {summary['generator']['dtype']}, {summary['generator']['settings']['steps']} steps")
PY
