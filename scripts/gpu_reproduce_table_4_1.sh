#!/usr/bin/env bash
# Thesis table 4.1 (frame interpolation) on one GPU: AMT-S, AMT-L and AMT-G on Vimeo90K, UCF101, SNU-FILM
# (4 levels) and Xiph 2K / 4K through `triptych reproduce 4.1` (published vs reproduced per row), their
# parameters and FLOPs from the architecture, and their runtime at 1280x720 on this GPU.
#
# Needs (`triptych reproduce 4.1 --dry-run` lists what is missing, one line each):
#   weights: amt_s, amt_l, amt_g (amt-s.pth, amt-l.pth, amt-g.pth) -> triptych weights fetch NAME, or import
#   data:    the standardize_vfi listings of the 8 test sets under DATA_ROOT/build/vfi (datasets/cards/vfi.md)
# Expected wall time (estimates, not measured here: no GPU was available when this script was written): the
# thesis times AMT-S / L / G at 51 / 116 / 250 ms per 720p frame on an RTX 3090; the sets hold 3,782 + 379 +
# 4 x 310 + 2 x 392 = 6,185 triplets, mostly far below 720p (Vimeo 448x256), so the models take ~10 / 20 /
# 40 min; SSIM matlab3d (46 ms per 448x256 frame on the CPU, larger for Xiph 2K) adds ~30 min per method with
# 1 worker. All three: about 2-3 h. Each step resumes after a kill: rerun the script.
# Usage: scripts/gpu_reproduce_table_4_1.sh [DATA_ROOT] [RESULTS]
set -euo pipefail
DATA=${1:-datasets}
OUT=${2:-runs/table-4.1}
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
triptych reproduce 4.1 --data-root "$DATA" --out "$OUT" --device cuda
for method in amt-s amt-l amt-g; do
  triptych efficiency --method "$method" --device cuda --runs 100 --out "$OUT/efficiency-$method.json" \
    --results "$OUT"
done
triptych leaderboard show --results "$OUT" --task frame_interpolation --no-ablations
