"""The speed targets of issue #24, each a ratio against the reference formulation measured in the same run
(marked slow). ``scripts/speed_table.py`` turns this suite's ``--benchmark-json`` into the README's speed
table (docs/performance.md):

    .venv/bin/pytest -m slow tests/perf/test_speed_targets.py --benchmark-enable --benchmark-json speed.json
    .venv/bin/python scripts/speed_table.py speed.json

- ``ssim:win65`` end to end: ``triptych measure`` on 276 frames of 432x240 (process start included)
  against a plain scikit-image ``structural_similarity(win_size=65)`` loop run the same way (>= 3x), and
  per frame, the metric alone (>= 5x); the values agree within 1e-6.
- ``ssim:matlab3d`` end to end at 1280x720 (``TRIPTYCH_PERF_PAIRS`` pairs, 24 by default) against AMT's
  formulation, one 11x11x11 ``conv3d`` per statistic (>= 5x); the values agree within 1e-5.
- E_warp's warp + occlusion + error on a 432x240 pair (flow excluded): under 8 ms, beside the per-step
  formulation it replaced.
- A DAVIS-sized job: ``triptych score --benchmark davis`` with PSNR, SSIM (win65) and E_warp (DIS),
  ``--workers 2``, on 3,455 frames of 432x240 in 50 videos (the tennis sample repeated to the DAVIS split
  list's frame counts, standardized by ``standardize_vos``) as a process: under 60 s, beside its physical
  floor measured in the same run (every PNG decoded once and DIS both ways for every pair, CPU time over 2
  cores). ``TRIPTYCH_PERF_FRAMES`` reduces it to the first videos (``--subset``): recorded against the
  target pro rata, never judged (its process start does not shrink with it).

Each target is asserted only on a quiet machine: during the measurement, the other processes of the machine
(all CPU time in ``/proc/stat`` less this test's own, children included) kept at most 0.5 of a core busy
per core. On a busy machine the suite measures and records everything, prints that load (and the 1-minute
load average) and emits a ``BusyMachineWarning`` (the row says "busy"), and never reports the target as met.
``TRIPTYCH_SPEED_TARGETS=record`` (what ``.ci/run`` sets: a shared CI runner's neighbours slow it in ways
``/proc/stat`` does not show) records every row as "recorded" with a warning saying whether the target
would be met, and asserts nothing.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from conftest import REPO
from triptych.threads import available_cpus

pytestmark = pytest.mark.slow
TRIPTYCH = str(Path(sys.executable).parent / "triptych")
WIN65_FRAMES = 276  # the tennis length of issue #24
PAIRS_720P = int(os.environ.get("TRIPTYCH_PERF_PAIRS", "24"))
ROUNDS = int(os.environ.get("TRIPTYCH_PERF_RUNS", "2"))
SAMPLE = REPO / "datasets/samples/tennis/frames"

# scikit-image as E2FGVI calls it, one frame pair at a time (the reference of the win65 target)
SKIMAGE_LOOP = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity
pred, gt = Path(sys.argv[1]), Path(sys.argv[2])
values = [structural_similarity(np.asarray(Image.open(g), np.float64), np.asarray(Image.open(pred / g.name), np.float64),
                                data_range=255.0, channel_axis=-1, win_size=65) for g in sorted(gt.glob("*.png"))]
print(float(np.mean(values)))
"""

# AMT's calculate_ssim (metrics/psnr_ssim.py @ 70f988f), written from its facts: a 3-D Gaussian window
# (11, sigma 1.5) as one conv3d over colour x H x W with 5-px replicate padding, float32 [0, 1] frames.
AMT_CONV3D_LOOP = """
import sys
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
g = torch.exp(-((torch.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
g = g / g.sum()
window = (g[:, None, None] * g[None, :, None] * g[None, None, :])[None, None]
def blur(v):
    return F.conv3d(F.pad(v, (5,) * 6, mode="replicate"), window)
def load(path):
    return torch.from_numpy(np.asarray(Image.open(path), np.float32) / 255).permute(2, 0, 1)[None, None]
pred, gt = Path(sys.argv[1]), Path(sys.argv[2])
values = []
with torch.no_grad():
    for p in sorted(pred.glob("*.png")):
        x, y = load(p).clamp(0, 1), load(gt / p.name)
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
        c1, c2 = 0.01 ** 2, 0.03 ** 2
        values.append(float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean()))
print(float(np.mean(values)))
"""


class BusyMachineWarning(UserWarning):
    """A speed target measured on a machine too busy to judge it."""


def _machine() -> str:
    """The CPU model with its widest vector instructions (the same model name comes with and without
    AVX-512, which halves convolution times) and the CPUs this process may use."""
    model = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        flags = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
        vector = next((label for flag, label in (("avx512f", "AVX-512"), ("avx2", "AVX2")) if flag in flags), None)
        model = (names[0] if names else model) + (f" ({vector})" if vector else "")
    return f"{model}, {available_cpus()} CPUs available"


class OtherLoad:
    """CPU time that the machine's other processes used while the block ran, in cores (``/proc/stat``'s busy
    time less this process's and its waited-for children's), and the 1-minute load average at its end."""

    def __enter__(self) -> "OtherLoad":
        self.start = self._snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        (busy0, own0, wall0), (busy1, own1, wall1) = self.start, self._snapshot()
        self.cores = max(0.0, ((busy1 - busy0) - (own1 - own0)) / max(wall1 - wall0, 1e-9))
        self.load_average = os.getloadavg()[0]

    @staticmethod
    def _snapshot() -> tuple[float, float, float]:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait
        own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for f in ("ru_utime", "ru_stime"))
        return busy, own, time.monotonic()


def _verdict(benchmark: Any, suite: str, result: str, ratio: float, goal: float, met: bool, unit: str,
             load: OtherLoad, reduced: str = "") -> None:
    """Record a target's row for ``scripts/speed_table.py``, then assert it on a quiet machine, or warn.
    ``reduced`` says why the measurement is smaller than its target's (then it is recorded, not judged)."""
    cpus = available_cpus()
    quiet = load.cores <= 0.5 * cpus
    record_only = os.environ.get("TRIPTYCH_SPEED_TARGETS", "assert") == "record" or bool(reduced)
    status = "busy" if not quiet else ("recorded" if record_only else "met" if met else "NOT met")
    target = f"{'>=' if unit == 'x' else '<'} {goal:g}{' ' + unit if unit != 'x' else 'x'}"
    busy_text = f"other processes {load.cores:.2f} of {cpus} CPUs, load average {load.load_average:.2f}"
    benchmark.extra_info["speed_row"] = {
        "suite": suite, "result": result, "value": ratio, "target": target, "status": status,
        "load": round(load.cores, 2), "load_average": round(load.load_average, 2), "cpus": cpus,
        "machine": _machine()}
    print(f"\n{suite}: {result} (target {target}; {status}; {busy_text})")
    if not quiet:
        warnings.warn(BusyMachineWarning(
            f"{suite}: measured while {busy_text} (quiet means at most {0.5 * cpus:g} CPUs used by others); "
            f"the target ({target}) is not judged: {result}"))
        return
    if record_only:
        why = reduced or "TRIPTYCH_SPEED_TARGETS=record (a shared CI runner)"
        warnings.warn(BusyMachineWarning(
            f"{suite}: {why}: the target ({target}) is recorded, not judged: {result}; it would be "
            f"{'met' if met else 'NOT met'}"))
        return
    assert met, f"{suite}: {result}, below its target {target} on a quiet machine ({busy_text})"


def _best_seconds(run: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return best, out


def _command(args: list[str]) -> Callable[[], str]:
    def run() -> str:
        done = subprocess.run(args, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout
    return run


def _frame_pairs(root: Path, count: int, size: tuple[int, int] | None = None) -> tuple[Path, Path]:
    """``count`` (prediction, ground truth) PNG pairs from the sample's frames: ground truth frame i, the
    prediction frame i + 1 (the sample repeated); ``size`` (W, H) resizes them (bicubic)."""
    import cv2

    pred, gt = root / "pred", root / "gt"
    pred.mkdir(parents=True)
    gt.mkdir(parents=True)
    sources = sorted(SAMPLE.glob("*.png"))
    for i in range(count):
        for folder, src in ((gt, sources[i % len(sources)]), (pred, sources[(i + 1) % len(sources)])):
            if size is None:
                os.link(src, folder / f"{i:05d}.png")
            else:
                frame = cv2.resize(cv2.imread(str(src)), size, interpolation=cv2.INTER_CUBIC)
                cv2.imwrite(str(folder / f"{i:05d}.png"), frame)
    return pred, gt


def _end_to_end(benchmark: Any, ours: list[str], reference: str, pred: Path, gt: Path,
                ) -> tuple[float, float, float, float, OtherLoad]:
    """Seconds and mean value of ``triptych measure ... --json`` and of the reference script, each run
    as its own process on the same frames (best of ``ROUNDS``), and the other processes' load meanwhile."""
    with OtherLoad() as load:
        ours_s, doc = _best_seconds(_command([TRIPTYCH, "measure", *ours, "--pred", str(pred), "--gt", str(gt),
                                              "--json", "--quiet"]), ROUNDS)
        ref_s, printed = _best_seconds(_command([sys.executable, "-c", reference, str(pred), str(gt)]), ROUNDS)
    benchmark.pedantic(lambda: None, rounds=1)  # the row's numbers are the extra_info below
    benchmark.extra_info.update({"seconds": ours_s, "reference_seconds": ref_s})
    return ours_s, ref_s, json.loads(doc)["aggregate"]["value"], float(printed.strip()), load


def test_ssim_win65_end_to_end(tmp_path, benchmark):
    pred, gt = _frame_pairs(tmp_path, WIN65_FRAMES)
    ours_s, ref_s, ours, ref, load = _end_to_end(benchmark, ["ssim", "--variant", "win65"], SKIMAGE_LOOP, pred, gt)
    assert ours == pytest.approx(ref, abs=1e-6)
    ratio = ref_s / ours_s
    _verdict(benchmark, "`ssim:win65` end to end, `triptych measure` vs a scikit-image loop",
             f"{WIN65_FRAMES} frames of 432x240: {ours_s:.2f} s vs {ref_s:.2f} s ({ratio:.2f}x), process start "
             "included", ratio, 3.0, ratio >= 3.0, "x", load)


def test_ssim_win65_per_frame(benchmark):
    from skimage.metrics import structural_similarity

    from triptych.media import read_rgb
    from triptych.metrics.ssim import ssim_win65
    from triptych.threads import configure_scoring_process

    configure_scoring_process(1)
    gt, pred = read_rgb(SAMPLE / "00010.png"), read_rgb(SAMPLE / "00011.png")

    def reference() -> float:
        return float(structural_similarity(gt.astype(np.float64), pred.astype(np.float64), data_range=255.0,
                                           channel_axis=-1, win_size=65))

    with OtherLoad() as load:
        ours_s, ours = _best_seconds(lambda: ssim_win65(pred, gt), 20)
        ref_s, ref = _best_seconds(reference, 20)
    assert ours == pytest.approx(ref, abs=1e-12)
    benchmark.pedantic(ssim_win65, args=(pred, gt), rounds=5)
    ratio = ref_s / ours_s
    _verdict(benchmark, "`ssim:win65` per 432x240 frame vs `skimage.structural_similarity(win_size=65)`",
             f"{ours_s * 1000:.1f} ms vs {ref_s * 1000:.1f} ms ({ratio:.2f}x; best of 20), equal within 1e-12",
             ratio, 5.0, ratio >= 5.0, "x", load)


def test_ssim_matlab3d_end_to_end_1280x720(tmp_path, benchmark):
    pred, gt = _frame_pairs(tmp_path, PAIRS_720P, (1280, 720))
    ours_s, ref_s, ours, ref, load = _end_to_end(benchmark, ["ssim", "--variant", "matlab3d"], AMT_CONV3D_LOOP,
                                                  pred, gt)
    assert ours == pytest.approx(ref, abs=1e-5)
    ratio = ref_s / ours_s
    _verdict(benchmark, "`ssim:matlab3d` end to end, `triptych measure` vs AMT's 11x11x11 conv3d",
             f"{PAIRS_720P} pairs of 1280x720: {ours_s:.2f} s vs {ref_s:.2f} s ({ratio:.2f}x), equal within 1e-5",
             ratio, 5.0, ratio >= 5.0, "x", load)


def _per_step_ewarp(frame_t: np.ndarray, frame_next: np.ndarray, forward: np.ndarray,
                    backward: np.ndarray) -> float:
    """The formulation E_warp had before #24 (for timing): each warp on its own, with 2-D fancy indexing,
    then the occlusion rule and the error over boolean-indexed pixels."""
    def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        h, w = flow.shape[:2]
        xf = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
        yf = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
        x0, y0 = np.floor(xf), np.floor(yf)
        a, b = (xf - x0)[..., None], (yf - y0)[..., None]
        xl, xr = np.clip(x0, 0, w - 1).astype(np.intp), np.clip(x0 + 1, 0, w - 1).astype(np.intp)
        yt, yb = np.clip(y0, 0, h - 1).astype(np.intp), np.clip(y0 + 1, 0, h - 1).astype(np.intp)
        return ((1 - a) * (1 - b) * image[yt, xl] + a * (1 - b) * image[yt, xr] + (1 - a) * b * image[yb, xl]
                + a * b * image[yb, xr])

    def mag(f: np.ndarray) -> np.ndarray:
        return f[..., 0] ** 2 + f[..., 1] ** 2

    bw = warp(backward, forward)
    fb = mag(forward + bw) > 0.01 * (mag(bw) + mag(forward)) + 0.5
    grads = np.zeros((4, *forward.shape[:2]), np.float64)
    grads[0, :, :-1] = forward[:, :-1, 0] - forward[:, 1:, 0]
    grads[1, :-1, :] = forward[:-1, :, 0] - forward[1:, :, 0]
    grads[2, :, :-1] = forward[:, :-1, 1] - forward[:, 1:, 1]
    grads[3, :-1, :] = forward[:-1, :, 1] - forward[1:, :, 1]
    occluded = fb | ((grads ** 2).sum(0) > 0.01 * mag(forward) + 0.002)
    visible = ~occluded
    warped = warp(frame_next.astype(np.float32) / 255, forward)
    return float(np.sum(np.square(warped[visible] - frame_t[visible].astype(np.float32) / 255)) / (3 * visible.sum()))


def test_ewarp_warp_occlusion_error_per_pair(benchmark):
    from triptych.media import read_rgb
    from triptych.metrics.ewarp import warping_pair_error
    from triptych.vision.flow import dis_flow
    from triptych.threads import configure_scoring_process

    configure_scoring_process(1)
    a, b = read_rgb(SAMPLE / "00010.png"), read_rgb(SAMPLE / "00011.png")
    forward, backward = dis_flow(a, b), dis_flow(b, a)
    with OtherLoad() as load:
        ours_s, ours = _best_seconds(lambda: warping_pair_error(a, b, forward, backward).value, 30)
        old_s, old = _best_seconds(lambda: _per_step_ewarp(a, b, forward, backward), 30)
    assert ours == pytest.approx(old, rel=1e-4)
    benchmark.pedantic(warping_pair_error, args=(a, b, forward, backward), rounds=5)
    ms = ours_s * 1000
    _verdict(benchmark, "E_warp warp + occlusion + error per 432x240 pair (flow excluded)",
             f"{ms:.1f} ms (best of 30) vs {old_s * 1000:.1f} ms for the per-step formulation it replaced",
             ms, 8.0, ms < 8.0, "ms", load)


# The floor of the DAVIS-sized job: every PNG the job reads decoded once (ground truth, mask, prediction) and
# DIS both ways for every pair, by the readers and the flow the job uses, one thread; prints its CPU seconds
DAVIS_FLOOR = """
import json, sys, time
from pathlib import Path
from triptych.threads import single_threaded_worker
single_threaded_worker()
from triptych.media import read_mask, read_rgb
from triptych.vision.flow import dis_flow
root, pred = Path(sys.argv[1]), Path(sys.argv[2])
decode = dis = 0.0
for video, count in json.loads(sys.argv[3]).items():
    previous = None
    for i in range(count):
        start = time.process_time()
        gt = read_rgb(root / "frames" / video / f"{i:05d}.png")
        read_mask(root / "masks" / video / f"{i:05d}.png")
        read_rgb(pred / video / f"{i:05d}.png")
        middle = time.process_time()
        if previous is not None:
            dis_flow(previous, gt), dis_flow(gt, previous)
        decode, dis, previous = decode + middle - start, dis + time.process_time() - middle, gt
print(json.dumps([decode, dis]))
"""
DAVIS_FRAMES = int(os.environ.get("TRIPTYCH_PERF_FRAMES", "3455"))  # CI: 200 (the first videos, --subset)
DAVIS_SECONDS = 60.0  # for the whole 3,455 frames; a reduced set is recorded against it pro rata, not judged
DAVIS_CORES = 2


def _davis_data(base: Path, frames: int) -> tuple[Path, Path, dict[str, int]]:
    """A data root holding ``davis-test`` as the ``standardize_vos`` stage writes it (frames, masks, test.json,
    manifest, report), from the tennis sample's frames and masks repeated to the DAVIS split list's frame
    counts: its first videos up to ``frames`` frames (all 50, 3,455 frames, by default); the prediction of
    frame i is the ground truth of frame i + 1. Returns (data root, prediction folder, video -> frames)."""
    from triptych.pipelines.standardize_vos import main as standardize_vos

    split_list = REPO / "datasets/splits/davis_test.json"
    videos: dict[str, int] = {}
    for video, count in json.loads(split_list.read_text()).items():
        if sum(videos.values()) >= frames:
            break
        videos[video] = count
    sources = sorted(SAMPLE.glob("*.png"))
    for video, count in videos.items():
        for kind in ("frames", "masks"):
            (base / "raw" / kind / video).mkdir(parents=True)
            for i in range(count):
                os.link(SAMPLE.parent / kind / sources[i % len(sources)].name, base / "raw" / kind / video / f"{i:05d}.png")
    data = base / "datasets"
    standardize_vos(["--name", "davis-test", "--frames", str(base / "raw/frames/{video}"), "--masks",
                     str(base / "raw/masks/{video}"), "--split-list", str(split_list), "--variants", "e2fgvi",
                     "--subset", ",".join(videos), "--workers", str(DAVIS_CORES), "--out", str(data / "build/vos")])
    root = data / "build/vos/davis-test/e2fgvi"
    for video, count in videos.items():
        (base / "pred" / video).mkdir(parents=True)
        for i in range(count):
            next_frame = i + 1 if i + 1 < count else i - 1  # never the frame itself (an infinite PSNR)
            os.link(root / "frames" / video / f"{next_frame:05d}.png", base / "pred" / video / f"{i:05d}.png")
    return data, base / "pred", videos


def _davis_floor(root: Path, pred: Path, videos: dict[str, int]) -> tuple[float, float]:
    """(decode, DIS) CPU seconds of ``DAVIS_FLOOR`` run as ``DAVIS_CORES`` processes at once (under the load the
    job saw), the videos shared longest first to the least loaded."""
    shares: list[dict[str, int]] = [{} for _ in range(DAVIS_CORES)]
    for video, count in sorted(videos.items(), key=lambda item: -item[1]):
        min(shares, key=lambda share: sum(share.values()))[video] = count
    runs = [subprocess.Popen([sys.executable, "-c", DAVIS_FLOOR, str(root), str(pred), json.dumps(share)],
                             stdout=subprocess.PIPE, text=True) for share in shares]
    outputs = [run.communicate()[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    decode, dis = np.sum([json.loads(out.strip().splitlines()[-1]) for out in outputs], axis=0)
    return float(decode), float(dis)


def test_davis_sized_job_end_to_end(tmp_path, benchmark):
    """``triptych score --benchmark davis`` with PSNR, SSIM (win65) and E_warp (DIS) on 2 workers, as a process,
    against the floor of the same job measured in the same run (issue #24, item 4)."""
    import pandas as pd

    data, pred, videos = _davis_data(tmp_path, DAVIS_FRAMES)
    frames = sum(videos.values())
    subset = ["--subset"] if len(videos) < 50 else []
    args = [TRIPTYCH, "score", "--benchmark", "davis", "--data-root", str(data), "--pred-dir", str(pred), *subset,
            "--metric", "psnr:e2fgvi", "--metric", "ssim:win65", "--metric", "ewarp:dis",
            "--workers", str(DAVIS_CORES), "--out", str(tmp_path / "results"), "--quiet"]
    with OtherLoad() as load:
        seconds, _ = _best_seconds(_command(args), 1)
        decode, dis = _davis_floor(data / "build/vos/davis-test/e2fgvi", pred, videos)
    floor = (decode + dis) / DAVIS_CORES  # the physical floor: the job's decoding and flow, on its cores
    (run,) = (tmp_path / "results").iterdir()
    rows = pd.read_parquet(run / "samples.parquet")
    assert rows.groupby("metric").size().to_dict() == {"psnr": frames, "ssim": frames, "ewarp": len(videos)}
    benchmark.pedantic(lambda: None, rounds=1)  # the row's numbers are the extra_info below
    benchmark.extra_info.update({"seconds": seconds, "floor_seconds": floor, "decode_cpu_seconds": decode,
                                 "dis_cpu_seconds": dis, "frames": frames, "videos": len(videos)})
    goal = DAVIS_SECONDS * frames / 3455
    _verdict(benchmark, "DAVIS-sized job, `triptych score` PSNR + SSIM win65 + E_warp DIS, `--workers 2`",
             f"{frames} frames of 432x240 in {len(videos)} videos: {seconds:.1f} s, process start included; floor "
             f"{floor:.1f} s ({seconds / floor:.2f}x the floor: PNG decode {decode:.1f} s + DIS both ways "
             f"{dis:.1f} s of CPU, over {DAVIS_CORES} cores)", seconds, goal, seconds < goal, "s", load,
             reduced=f"TRIPTYCH_PERF_FRAMES={DAVIS_FRAMES} (a reduced set, its process start not pro rata)"
             if frames < 3455 else "")
