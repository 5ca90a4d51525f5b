#!/usr/bin/env bash
# A thesis table on one GPU: `triptych reproduce TABLE` (published vs reproduced per row, every step
# resumable: after a kill, run the script again), the table's extras, then the leaderboard.
#
# 3.1 (video completion): E2FGVI on DAVIS test-50 and YouTube-VOS test (PSNR, SSIM, VFID; FLOPs from the
#     architecture), then E2FGVI-HQ on the same sets (the table prints no HQ row: shown unpaired).
#     Needs weights e2fgvi, e2fgvi_hq, i3d_rgb_imagenet and the standardize_vos outputs davis-test and
#     youtube-vos-test (variant e2fgvi) under DATA_ROOT/build/vos.
#     Expected wall time (estimated, no GPU was available to measure it): the thesis times E2FGVI at 0.16
#     s/frame on a Titan Xp, a current GPU ~3-5x faster: DAVIS (3,455 frames) ~5-10 min, YouTube-VOS (70,382)
#     ~1-3 h per method; the CPU metrics beside it (SSIM win65 ~17 ms/frame, measured on one core) ~20 min
#     for YouTube-VOS. Both methods on both sets: about 4-8 h.
# 4.1 (frame interpolation): AMT-S, AMT-L, AMT-G on Vimeo90K, UCF101, SNU-FILM x4, Xiph 2K / 4K, their
#     parameters and FLOPs, then their runtime at 1280x720 on this GPU (100 runs).
#     Needs weights amt_s, amt_l, amt_g and the 8 standardize_vfi listings under DATA_ROOT/build/vfi.
#     Expected wall time (estimated as above): 6,185 triplets, mostly far below 720p; the thesis times AMT-S / L
#     / G at 51 / 116 / 250 ms per 720p frame on an RTX 3090, so ~10 / 20 / 40 min of model time; SSIM
#     matlab3d (46 ms per 448x256 frame on one core) adds ~30 min per method. All three: about 2-3 h.
# `triptych reproduce TABLE --dry-run` lists what is missing, one line each, with the download and command.
# Usage: scripts/gpu_reproduce_table.sh 3.1|4.1 [DATA_ROOT] [RESULTS]
set -euo pipefail
TABLE=${1:?usage: $0 3.1|4.1 [DATA_ROOT] [RESULTS]}
DATA=${2:-datasets}
OUT=${3:-runs/table-$TABLE}
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
time triptych reproduce "$TABLE" --data-root "$DATA" --out "$OUT" --device cuda
case "$TABLE" in
  3.1)
    task=video_inpainting
    for bench in davis youtube-vos; do
      time triptych score --benchmark "$bench" --benchmark-variant e2fgvi --method e2fgvi-hq --data-root "$DATA" \
        --out "$OUT" --device cuda
    done ;;
  4.1)
    task=frame_interpolation
    for method in amt-s amt-l amt-g; do
      triptych efficiency --method "$method" --device cuda --runs 100 --out "$OUT/efficiency-$method.json" \
        --results "$OUT"
    done ;;
  *) echo "table $TABLE: this script runs 3.1 or 4.1 (triptych reproduce runs any table)" >&2; exit 2 ;;
esac
triptych leaderboard show --results "$OUT" --task "$task" --no-ablations
