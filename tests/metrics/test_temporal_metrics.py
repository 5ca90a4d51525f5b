"""tLP, FloLPIPS and DEVIL's patch consistency: hand-computed known answers, the ``lpips`` package as the
reference of tLP's distances, skimage's PSNR inside DEVIL's own search loop as the reference of PCons, and
``triptych measure`` end to end on PCons (which needs no weights)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from triptych import weights
from triptych.errors import InputError
from triptych.metrics import temporal
from triptych.metrics.perceptual import LpipsNet, lpips_value
from triptych.weights_rule import rule_state_dict

torch.set_num_threads(1)
ABS = 1e-6  # float32 LPIPS, as in test_perceptual_metrics.py


class _Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = torchvision.models.alexnet(weights=None).features


@pytest.fixture(scope="module")
def alex() -> LpipsNet:
    return LpipsNet("alex", rule_state_dict(_Features(), 0, 1.0), weights.load("lpips_lin_alex_v0_1"))


def _video(seed: int, frames: int, size=(64, 72)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[0], size[1] + 2 * frames, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, 2 * t:2 * t + size[1]]) for t in range(frames)]  # pans 2 px per frame


def test_crop_8x8_and_the_frames_tecogan_scores(alex):
    assert temporal.crop_8x8(np.zeros((240, 432, 3))).shape == (224, 416, 3)
    assert temporal.crop_8x8(np.zeros((100, 120, 3))).shape == (64, 96, 3)  # 96 > 84 -> 64; 96 <= 104
    gt = _video(0, 8)
    static = [gt[0]] * 8
    # a static prediction has LPIPS 0 between its frames, so tLP is LPIPS of the gt pair, by hand;
    # cut 2 of 8 frames: pairs (t-1, t) for t = 3, 4, 5
    values = temporal.tlp_values(alex, static, gt, cut=2, crop=False)
    want = [lpips_value(alex, gt[t - 1], gt[t]) for t in (3, 4, 5)]
    assert values == pytest.approx(want, abs=1e-12) and min(want) > 0.01
    assert temporal.tlp_values(alex, gt, gt, cut=0, crop=False) == [0.0] * 7
    with pytest.raises(InputError, match="no pair"):
        temporal.tlp_values(alex, gt[:5], gt[:5], cut=2, crop=False)


def test_tlp_distances_equal_the_lpips_package(alex):
    lpips_ref = pytest.importorskip("lpips")
    ref = lpips_ref.LPIPS(net="alex", pnet_rand=True, verbose=False)
    slices = [ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5]
    state = {}
    for key, value in _Features().state_dict().items():
        index, rest = key.split(".", 2)[1:]
        owner = next(i for i, s in enumerate(slices, 1) if index in s._modules)
        state[f"slice{owner}.{index}.{rest}"] = rule_state_dict(_Features(), 0, 1.0)[key]
    ref.net.load_state_dict(state, strict=True)
    gt = _video(1, 4)
    rng = np.random.default_rng(2)
    pred = [np.clip(f.astype(int) + rng.integers(-40, 41, f.shape), 0, 255).astype(np.uint8) for f in gt]
    with torch.no_grad():
        d = lambda a, b: ref(lpips_ref.im2tensor(a), lpips_ref.im2tensor(b)).item()  # noqa: E731
        want = [abs(d(gt[t - 1], gt[t]) - d(pred[t - 1], pred[t])) for t in range(1, 4)]
    assert temporal.tlp_values(alex, pred, gt, cut=0, crop=False) == pytest.approx(want, abs=2 * ABS)


def test_flolpips_known_answers(alex):
    gt, pred = _video(3, 2)[0], _video(4, 2)[0]
    # a uniform flow error weights every map pixel equally: FloLPIPS = LPIPS, by hand
    uniform = np.full(gt.shape[:2] + (2,), (3.0, 4.0), np.float32)
    assert temporal.flow_weighted_lpips(alex, pred, gt, uniform) == pytest.approx(lpips_value(alex, gt, pred),
                                                                                   abs=ABS)
    # identical frames: every map is 0, so the value is 0 even with no flow error
    zero = np.zeros_like(uniform)
    assert temporal.flow_weighted_lpips(alex, gt, gt, zero) == 0.0
    with pytest.raises(InputError, match="flows agree exactly"):
        temporal.flow_weighted_lpips(alex, pred, gt, zero)
    # an error in the left half only: the weighted mean moves away from the plain mean
    left = zero.copy()
    left[:, :36] = 1.0
    assert temporal.flow_weighted_lpips(alex, pred, gt, left) != pytest.approx(lpips_value(alex, gt, pred), abs=1e-4)


def test_flolpips_with_dis_flows_runs_on_a_video(alex):
    from triptych.vision.flow import dis_flow

    gt = _video(5, 3)
    rng = np.random.default_rng(6)
    pred = [np.clip(f.astype(int) + rng.integers(-30, 31, f.shape), 0, 255).astype(np.uint8) for f in gt]
    values = temporal.flolpips_values(alex, pred, gt, dis_flow)
    assert len(values) == 2 and all(v > 0 and math.isfinite(v) for v in values)


def _devil_pcons_pair(a: np.ndarray, b: np.ndarray, y: int, x: int, ps: int, sw: int) -> float:
    """DEVIL's search loop, written as its pcons_psnr_computer.py does it, with skimage's PSNR."""
    from skimage.metrics import peak_signal_noise_ratio

    src = a[y:y + ps, x:x + ps]
    best, by, bx = 0.0, None, None
    for yy in range(y - sw, y + sw):
        for xx in range(x - sw, x + sw):
            cand = b[yy:yy + ps, xx:xx + ps]
            if cand.shape != src.shape:
                continue
            with np.errstate(divide="ignore"):
                value = peak_signal_noise_ratio(src, cand, data_range=1.0)
            if value > best:
                best, by, bx = value, yy, xx
    with np.errstate(divide="ignore"):
        return peak_signal_noise_ratio(src, b[by:by + ps, bx:bx + ps], data_range=1.0)


def test_pcons_equals_devils_loop_with_one_rng_across_videos():
    rng = np.random.default_rng(7)
    videos = [[rng.random((40, 48, 3), dtype=np.float32) for _ in range(3)] for _ in range(2)]
    state: dict = {}
    got = [temporal.pcons_psnr(v, v, state=state, patch=16, search=5) for v in videos]
    draws = np.random.default_rng(1234)
    for video, values in zip(videos, got):
        for t in (1, 2):
            y, x = int(draws.integers(40 - 16)), int(draws.integers(48 - 16))
            want = _devil_pcons_pair(video[t - 1], video[t], y, x, 16, 5)
            assert values[t - 1] == pytest.approx(want, abs=1e-9)


def test_pcons_known_answers():
    # flat frames 0.5 then 0.6: every patch differs by 0.1, so PSNR = 10 log10(1 / 0.01) = 20 dB, by hand
    flat = [np.full((80, 90, 3), 0.5, np.float32), np.full((80, 90, 3), 0.6, np.float32)]
    assert temporal.pcons_psnr(flat, flat) == [pytest.approx(20.0, abs=1e-4)]
    # a pan of 2 px per frame is found exactly by the search: inf
    video = _video(8, 3, size=(70, 80))
    assert temporal.pcons_psnr(video, video) == [math.inf, math.inf]
    # the hole-centred patch: the hole's centroid is (40, 50) -> corner (15, 25); a flat prediction inside
    # the hole composited into a flat gt outside it still differs by exactly 0.1 where the patch meets the hole
    masks = [np.zeros((80, 90), np.uint8) for _ in range(2)]
    for m in masks:
        m[30:51, 40:61] = 255
    gt = [np.full((80, 90, 3), 0.5, np.float32)] * 2
    pred = [np.full((80, 90, 3), 0.5, np.float32), np.full((80, 90, 3), 0.6, np.float32)]
    # frame 0 composite = 0.5 everywhere; frame 1 = 0.6 in its 21x21 hole. The best 50x50 window avoids as
    # much hole as the +-20 search allows; by hand the window at corner (0, 5) still covers rows 30..49 x
    # cols 40..54 = 20 x 15 hole pixels: mse = 300 * 0.01 / 2500
    (value,) = temporal.pcons_psnr_hole(pred, gt, masks)
    assert value == pytest.approx(10 * math.log10(2500 / (300 * 0.01)), abs=1e-3)
    with pytest.raises(InputError, match="empty hole"):
        temporal.pcons_psnr_hole(pred, gt, [np.zeros((80, 90), np.uint8)] * 2)


def test_measure_pcons_end_to_end(tmp_path, run_cli):
    for name, seed in (("a", 9), ("b", 10)):
        for root in ("gt", "pred"):
            (tmp_path / root / name).mkdir(parents=True)
        for t, frame in enumerate(_video(seed, 3, size=(60, 70))):
            Image.fromarray(frame).save(tmp_path / "gt" / name / f"{t:05d}.png")
            noisy = np.clip(frame.astype(int) + (t * 7 % 11) - 5, 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(tmp_path / "pred" / name / f"{t:05d}.png")
    code, out, err = run_cli("measure", "pcons_psnr", "--variant", "devil", "--pred", tmp_path / "pred",
                             "--gt", tmp_path / "gt", "--json")
    assert code == 0, err
    doc = json.loads(out)
    per = {s["sample_id"]: s["value"] for s in doc["per_sample"]}
    assert sorted(per) == ["a", "b"] and len(doc["extras"]["per_pair"]["a"]) == 2
    assert doc["aggregate"]["value"] == pytest.approx((per["a"] + per["b"]) / 2, abs=1e-12)
    code, _, err = run_cli("measure", "pcons_psnr", "--variant", "devil-hole", "--pred", tmp_path / "pred",
                           "--gt", tmp_path / "gt")
    assert code != 0 and "--mask" in err


def test_flolpips_equals_vfibenchmarks_forward_per_pair_of_a_batch(alex):
    """VFIBenchmark @ 40a05ec ``FloLPIPS.forward(ref, dis, flow_ref - flow_dis, normalize=True)`` written
    out on the ``lpips`` package's layers (same trunk): each head map summed under the flow-error
    magnitude normalised over dims 1, 2, 3 (``mw_spatial_average``), so per pair of a batch of two; the
    metric scores each pair alone and must give each batch element's value."""
    import torch.nn.functional as F

    lpips_ref = pytest.importorskip("lpips")
    ref = lpips_ref.LPIPS(net="alex", pnet_rand=True, verbose=False)
    slices = [ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5]
    trunk = rule_state_dict(_Features(), 0, 1.0)
    state = {}
    for key, value in trunk.items():
        index, rest = key.split(".", 2)[1:]
        owner = next(i for i, s in enumerate(slices, 1) if index in s._modules)
        state[f"slice{owner}.{index}.{rest}"] = value
    ref.net.load_state_dict(state, strict=True)
    ref.eval()
    rng = np.random.default_rng(12)
    gts = [_video(13, 1)[0], _video(14, 1)[0]]
    preds = [np.clip(g.astype(int) + rng.integers(-50, 51, g.shape), 0, 255).astype(np.uint8) for g in gts]
    errors = [rng.normal(0, 2, g.shape[:2] + (2,)).astype(np.float32) * s for g, s in zip(gts, (1.0, 5.0))]
    unit = lambda frames: torch.from_numpy(np.stack(frames).astype(np.float32).transpose(0, 3, 1, 2) / 255)  # noqa: E731
    in0, in1 = 2 * unit(gts) - 1, 2 * unit(preds) - 1  # normalize=True
    flow = torch.from_numpy(np.stack(errors).transpose(0, 3, 1, 2))
    with torch.no_grad():
        outs0, outs1 = ref.net(ref.scaling_layer(in0)), ref.net(ref.scaling_layer(in1))
        want = 0
        for kk in range(5):
            diff = (lpips_ref.normalize_tensor(outs0[kk]) - lpips_ref.normalize_tensor(outs1[kk])) ** 2
            layer = ref.lins[kk](diff)
            resized = F.interpolate(flow, layer.shape[-2:], align_corners=False, mode="bilinear")
            mag = torch.sqrt(resized[:, 0:1] ** 2 + resized[:, 1:2] ** 2)
            want = want + torch.sum(layer * (mag / torch.sum(mag, dim=[1, 2, 3], keepdim=True)), dim=[1, 2, 3])
    for i in range(2):
        assert want[i].item() > 0.01
        assert temporal.flow_weighted_lpips(alex, preds[i], gts[i], errors[i]) == pytest.approx(want[i].item(),
                                                                                               abs=ABS)


def _devil_pcons_ssim_pair(a: np.ndarray, b: np.ndarray, y: int, x: int, ps: int, sw: int) -> float:
    """DEVIL's pcons_ssim_computer.py loop with skimage's SSIM as scikit-image 0.17.2 computes
    structural_similarity(a, b, multichannel=True) on float32 [0, 1] patches (float64, data range 2)."""
    from skimage.metrics import structural_similarity

    ssim = lambda p, q: structural_similarity(p.astype(np.float64), q.astype(np.float64),  # noqa: E731
                                              channel_axis=-1, data_range=2.0)
    src = a[y:y + ps, x:x + ps]
    best, by, bx = 0.0, None, None
    for yy in range(y - sw, y + sw):
        for xx in range(x - sw, x + sw):
            cand = b[yy:yy + ps, xx:xx + ps]
            if cand.shape != src.shape:
                continue
            value = ssim(src, cand)
            if value > best:
                best, by, bx = value, yy, xx
    return ssim(src, b[by:by + ps, bx:bx + ps])


def test_pcons_ssim_equals_devils_loop_with_one_rng_across_videos():
    rng = np.random.default_rng(15)
    videos = [[rng.random((36, 40, 3), dtype=np.float32) for _ in range(3)] for _ in range(2)]
    preds = [[np.clip(f + rng.normal(0, 0.05, f.shape).astype(np.float32), 0, 1) for f in v] for v in videos]
    state: dict = {}
    got = [temporal.pcons_ssim(p, v, state=state, patch=14, search=4) for p, v in zip(preds, videos)]
    draws = np.random.default_rng(1234)
    for pred, values in zip(preds, got):
        for t in (1, 2):
            y, x = int(draws.integers(36 - 14)), int(draws.integers(40 - 14))
            want = _devil_pcons_ssim_pair(pred[t - 1], pred[t], y, x, 14, 4)
            assert values[t - 1] == pytest.approx(want, abs=1e-9)
    # a pan of 2 px per frame is found exactly by the search: SSIM 1
    video = _video(16, 3, size=(70, 80))
    assert temporal.pcons_ssim(video, video) == [pytest.approx(1.0, abs=1e-12)] * 2


def test_measure_pcons_ssim_end_to_end(tmp_path, run_cli):
    gt = _video(17, 3, size=(60, 70))
    for t, frame in enumerate(gt):
        for root in ("gt", "pred"):
            (tmp_path / root).mkdir(exist_ok=True)
        Image.fromarray(frame).save(tmp_path / "gt" / f"{t:05d}.png")
        Image.fromarray(frame).save(tmp_path / "pred" / f"{t:05d}.png")
    code, out, err = run_cli("measure", "pcons_ssim", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["metric_variant"] == "devil" and doc["aggregate"]["value"] == pytest.approx(1.0, abs=1e-12)
