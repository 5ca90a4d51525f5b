"""DEVIL's PVCS (``triptych.metrics.pvcs``) against a known answer computed the DEVIL way on fixed inputs:
the same rule-built I3D (``triptych/weights_rule.py``) on both sides, its four endpoint maps taken with
forward hooks, ``PNetLinI3D.forward``'s distance written out in float64 numpy, and
``PVCSComputer.compute_metric``'s window loop (first window, then ``del [0]`` / ``append``; short videos
padded with ``cur_gt_frames[-1]`` on both sides) written out as in video-inpainting-evaluation @ d339a12;
``get_comp_frame``'s ``C = M * G + (1 - M) * P`` (M = 1 on known pixels); then ``triptych measure`` with a
user I3D file, and the clear refusal without weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from triptych.metrics import pvcs
from triptych.metrics.i3d import build_i3d
from triptych.weights import MissingWeightsError
from triptych.weights_rule import apply_weights_rule

torch.set_num_threads(1)
SIZE = (48, 56)


@pytest.fixture(scope="module")
def i3d():
    model = build_i3d()
    apply_weights_rule(model, 5, 1.0)
    return model.eval()


def _video(seed: int, frames: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (SIZE[0], SIZE[1] + 3 * frames, 3), dtype=np.uint8)
    gt = [np.ascontiguousarray(base[:, 3 * t:3 * t + SIZE[1]]) for t in range(frames)]
    pred = [np.clip(g.astype(int) + rng.integers(-50, 51, g.shape), 0, 255).astype(np.uint8) for g in gt]
    masks = [np.zeros(SIZE, np.uint8) for _ in gt]
    for t, m in enumerate(masks):
        m[10 + t:30 + t, 12:40] = 255
    return pred, gt, masks


def _devil_distance(model, gt_clip: torch.Tensor, comp_clip: torch.Tensor) -> float:
    """PNetLinI3D.forward: endpoint maps by hooks, normalize_tensor, squared diff, channel sum,
    spatial_average over T, H, W, summed over the four endpoints (float64)."""
    def maps(clip):
        seen = {}
        hooks = [getattr(model, name).register_forward_hook(lambda mod, inp, out, name=name: seen.__setitem__(name, out))
                 for name in ("Conv3d_2c_3x3", "Mixed_3c", "Mixed_4f", "Mixed_5c")]
        with torch.no_grad():
            model.mixed_5c(clip)
        for hook in hooks:
            hook.remove()
        return [seen[name].double().numpy() for name in ("Conv3d_2c_3x3", "Mixed_3c", "Mixed_4f", "Mixed_5c")]

    total = 0.0
    for a, b in zip(maps(gt_clip), maps(comp_clip)):
        na = a / (np.sqrt((a ** 2).sum(axis=1, keepdims=True)) + 1e-10)
        nb = b / (np.sqrt((b ** 2).sum(axis=1, keepdims=True)) + 1e-10)
        total += ((na - nb) ** 2).sum(axis=1, keepdims=True).reshape(1, 1, -1).mean(axis=-1).item()
    return total


def _devil_pvcs(model, pred, gt, masks) -> float:
    """PVCSComputer.compute_metric for one video, its loop as written."""
    def convert(image):  # pil_rgb_to_numpy + numpy_image_to_tensor: 1 x C x H x W in [0, 1]
        return torch.from_numpy((np.asarray(image, np.float32) / 255).transpose(2, 0, 1).copy())[None]

    def comp(t):  # get_comp_frame: C = M * G + (1 - M) * P, M = 1 on known pixels
        known = (masks[t] == 0).astype(np.float32)[..., None]
        return np.round(known * gt[t] + (1 - known) * pred[t]).astype(np.uint8)

    num_frames, window = len(gt), 10
    num_windows = max(1, num_frames - window + 1)
    cur_gt, cur_comp = [], []
    for t in range(window):
        if t < num_frames:
            cur_gt.append(convert(gt[t]))
            cur_comp.append(convert(comp(t)))
        else:
            cur_gt.append(cur_gt[-1])
            cur_comp.append(cur_gt[-1])
    value = 0.0
    for t in range(num_windows):
        value += _devil_distance(model, torch.stack(cur_gt, dim=2), torch.stack(cur_comp, dim=2)) / num_windows
        if t + window < num_frames:
            del cur_gt[0]
            del cur_comp[0]
            cur_gt.append(convert(gt[t + window]))
            cur_comp.append(convert(comp(t + window)))
    return value


@pytest.mark.parametrize("frames", [12, 4])
def test_pvcs_equals_devils_computation(i3d, frames):
    pred, gt, masks = _video(frames, frames)
    values = pvcs.pvcs_values(i3d, pred, gt, masks)
    assert len(values) == max(1, frames - 9)
    want = _devil_pvcs(i3d, pred, gt, masks)
    assert float(np.mean(values)) == pytest.approx(want, rel=1e-6) and want > 1e-3


def test_short_video_pads_the_composited_clip_with_ground_truth_as_devil_does(i3d):
    pred, gt, masks = _video(1, 4)
    padded_with_pred = pvcs.clip_distance(i3d, np.stack([f / 255 for f in gt + [gt[-1]] * 6]).astype(np.float32),
                                          np.stack([f / 255 for f in pred + [pred[-1]] * 6]).astype(np.float32))
    value = pvcs.pvcs_values(i3d, pred, gt)  # no masks: the prediction is taken as composited
    assert value != pytest.approx([padded_with_pred], rel=1e-3)
    assert pvcs.pvcs_values(i3d, gt, gt) == [0.0]


def test_measure_pvcs_with_a_user_i3d_file(i3d, tmp_path, run_cli):
    pred, gt, masks = _video(2, 11)
    for name, frames in (("pred", pred), ("gt", gt), ("mask", masks)):
        folder = tmp_path / name / "clip"
        folder.mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(folder / f"{t:05d}.png")
    trunk = tmp_path / "i3d_user.pt"
    torch.save(i3d.state_dict(), trunk)
    code, out, err = run_cli("measure", "pvcs", "--variant", "devil", "--pred", tmp_path / "pred", "--gt",
                             tmp_path / "gt", "--mask", tmp_path / "mask", "--weights", trunk, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["aggregate"]["value"] == pytest.approx(_devil_pvcs(i3d, pred, gt, masks), rel=1e-6)
    assert doc["metric_variant"].startswith("devil+user-")


def test_pvcs_refuses_clearly_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    pvcs.pvcs_network.cache_clear()
    pred, gt, _ = _video(3, 2)
    with pytest.raises(MissingWeightsError, match="i3d_rgb_imagenet"):
        pvcs.pvcs(pred, gt)
