#!/usr/bin/env bash
# Every heavy backend of the ID pipeline (RetinaFace, ArcFace, Mask2Former, BLIP-2; spaCy where installed) on
# the sample portraits on one GPU, then the seconds per image of each stage. Needs the weights in the
# triptych cache first (offline: download them and 'triptych weights import NAME PATH'; the Hugging Face
# models' companion files go beside them, see docs/id_pipeline.md):
#   retinaface_<backbone>, arcface_w600k_r50, mask2former_swin_large_coco_panoptic, blip2_opt_2_7b
# Usage: scripts/gpu_id_heavy.sh [OUT_DIR] [BACKBONE] [TAG_BACKEND]   (BACKBONE: mobilenet0.25 | resnet50;
#        TAG_BACKEND: light | heavy, heavy needs spaCy's en_core_web_sm)
set -euo pipefail
OUT=${1:-datasets/build/id-heavy}
BACKBONE=${2:-resnet50}
TAG=${3:-light}
TIMING="$OUT/timing"
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
run() { python -m "triptych.pipelines.$1" --out "$OUT" --timing "$TIMING/$1.json" "${@:2}"; }
run id_collect --root datasets/samples/portraits
run id_detect --backend heavy --backbone "$BACKBONE" --device cuda
run id_verify --backend heavy --device cuda
run id_crop_mask --backend heavy --device cuda
run id_caption --backend heavy --device cuda
run id_tag --backend "$TAG"
python - "$TIMING" <<'PY'
import json, pathlib, sys
for stage in ("id_detect", "id_verify", "id_crop_mask", "id_caption", "id_tag"):
    t = json.loads((pathlib.Path(sys.argv[1]) / f"{stage}.json").read_text())
    per = t["seconds_per_computed_item"]
    loads = t.get("model_loads", {}).get("loads", "-")
    print(f"{stage}: {t['computed']} computed, {t['cached']} cached, "
          f"{'-' if per is None else f'{per:.3f}'} s per computed image (includes loading the model; {loads} load(s))")
PY
