"""The E2FGVI / E2FGVI-HQ port against the golden fixtures of the original code (MCG-NKU/E2FGVI @ 709cbe3).

Key lists come from ``shared/fixtures/inpainting_models``; weights (the deterministic rule), inputs,
outputs and tolerances from ``shared/fixtures/model_ports/e2fgvi{,_hq}``. A full forward of the fixture
window (12 frames at 432x240) takes about 35 s per model on one core, so the two output tests are marked
slow; the default run checks keys, weights, the SPyNet flows of both models (the same fixture tolerance)
and E2FGVI-HQ end to end on a two-window 108x60 video.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from triptych.baselines.e2fgvi import E2FGVI, E2FGVIInpainter, load_e2fgvi_state, make_e2fgvi, make_e2fgvi_hq, mirror_pad
from triptych.baselines.video_window import to_model_input
from triptych.errors import InputError, TriptychError
from triptych.methods import Inpainter, build_method
from triptych.registry import registry
from triptych.weights import MissingWeightsError, get_spec, sha256_file
from triptych.weights_rule import apply_weights_rule

MODELS = {"e2fgvi": False, "e2fgvi_hq": True}


def _expected(fixtures_dir: Path, name: str) -> dict:
    return json.loads((fixtures_dir / f"model_ports/{name}/expected.json").read_text())


@pytest.fixture(scope="module")
def rule_models(fixtures_dir) -> dict[str, E2FGVI]:
    """Each model with the fixture's rule weights, built once (its state hash checked against the fixture)."""
    models = {}
    for name, hq in MODELS.items():
        model = E2FGVI(hq)
        rule = _expected(fixtures_dir, name)["weights"]
        assert apply_weights_rule(model, rule["seed"], rule["gain"]) == rule["state_sha256"], name
        models[name] = model.eval()
    return models


def _fixture_input(fixtures_dir: Path) -> tuple[torch.Tensor, int]:
    """model_ports/README 'Inputs and invocation': imgs * (1 - m), [1, 12, 3, 240, 432] float32."""
    data = np.load(fixtures_dir / "model_ports/e2fgvi/inputs_u8.npz")
    x, m = to_model_input(data["frames"], (data["masks"] // 255).astype(np.uint8))
    return x * (1 - m), int(data["num_local_frames"])


@pytest.fixture(scope="module")
def hq_model(rule_models) -> E2FGVI:
    return rule_models["e2fgvi_hq"]


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_keys_shapes_and_parameter_counts_equal_the_reference(fixtures_dir, name):
    listing = json.loads((fixtures_dir / f"inpainting_models/{name}_keys.json").read_text())
    model = E2FGVI(MODELS[name])
    ours = [(key, list(t.shape), str(t.dtype).removeprefix("torch.")) for key, t in model.state_dict().items()]
    assert ours == [(e["key"], e["shape"], e["dtype"]) for e in listing["keys"]]
    assert sum(p.numel() for p in model.parameters()) == listing["total_params"]
    assert len(list(model.buffers())) == listing["num_buffer_tensors"]
    missing, unexpected = model.load_state_dict(model.state_dict(), strict=True)
    assert not missing and not unexpected


@pytest.mark.parametrize("name", MODELS)
def test_spynet_flows_of_the_fixture_window_match_the_reference(fixtures_dir, rule_models, name):
    expected = _expected(fixtures_dir, name)
    model = rule_models[name]
    masked, num_local = _fixture_input(fixtures_dir)
    with torch.no_grad():
        flows = model.flows((masked[:, :num_local] + 1) / 2)
    tolerance = expected["tolerances"]["flows_*.npy"]["max_abs"]
    for flow, file in zip(flows, ("flows_forward.npy", "flows_backward.npy")):
        reference = np.load(fixtures_dir / f"model_ports/{name}/{file}")
        assert flow.shape == reference.shape
        assert float(np.abs(flow.numpy() - reference).max()) <= tolerance, file


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_full_forward_of_the_fixture_window_matches_the_reference(fixtures_dir, rule_models, name):
    expected = _expected(fixtures_dir, name)
    model = rule_models[name]
    masked, num_local = _fixture_input(fixtures_dir)
    with torch.no_grad():
        out, flows = model(masked, num_local)
    stats = expected["outputs"]["pred_imgs.npy"]
    assert list(out.shape) == stats["shape"]
    reference = np.load(fixtures_dir / f"model_ports/{name}/pred_imgs.npy")
    diff = np.abs(out.numpy()[expected["pred_imgs_rows_kept"]] - reference)
    tolerance = expected["tolerances"]["pred_imgs.npy"]
    assert float(diff.max()) <= tolerance["max_abs"] and float(diff.mean()) <= tolerance["mean_abs"]
    for flow, file in zip(flows, ("flows_forward.npy", "flows_backward.npy")):
        flow_diff = np.abs(flow.numpy() - np.load(fixtures_dir / f"model_ports/{name}/{file}")).max()
        assert float(flow_diff) <= expected["tolerances"]["flows_*.npy"]["max_abs"]


def test_strict_loading_names_the_problem_and_the_other_model():
    model = E2FGVI(False)
    state = model.state_dict()
    with pytest.raises(TriptychError, match=r"1 missing key\(s\): decoder\.6\.bias") as info:
        load_e2fgvi_state(model, {k: v for k, v in state.items() if k != "decoder.6.bias"}, "ckpt.pth")
    assert "ckpt.pth" in str(info.value) and "E2FGVI-CVPR22.pth" in info.value.fix
    with pytest.raises(TriptychError, match="E2FGVI-HQ checkpoint") as info:
        load_e2fgvi_state(model, E2FGVI(True).state_dict())
    assert "sc.bias_conv.weight" in str(info.value)
    with pytest.raises(TriptychError, match="shape mismatch"):
        load_e2fgvi_state(model, {**state, "sc.bias": torch.zeros(128, 30, 54)})


def test_e2fgvi_refuses_other_sizes_and_hq_needs_whole_windows():
    with pytest.raises(InputError, match="432x240 only"):
        E2FGVI(False)(torch.zeros(1, 2, 3, 120, 216), 2)
    with pytest.raises(InputError, match="whole 5x9 attention windows"):
        E2FGVI(True)(torch.zeros(1, 2, 3, 64, 108), 2)


def test_mirror_pad_appends_the_flipped_frame():
    x = torch.arange(6.0).view(1, 2, 3)  # rows [0 1 2], [3 4 5]
    padded = mirror_pad(x, (3, 5))
    assert padded.tolist() == [[[0, 1, 2, 2, 1], [3, 4, 5, 5, 4], [3, 4, 5, 5, 4]]]
    assert torch.equal(mirror_pad(torch.ones(1, 60, 108), (60, 108)), torch.ones(1, 60, 108))


def test_hq_inpainter_on_a_two_window_video(hq_model):
    """E2FGVI-HQ runs at 108x60 (a 5x9 token grid). Seven frames give two windows (frames 0-5, 0-6): the
    merged composites lie on a quarter grid, returned as ``c / 255`` and kept so by the harness
    (``protocol_frames``), as evaluate.py scores them; visible pixels are the input's."""
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, size=(7, 60, 108, 3), dtype=np.uint8)
    holes = np.zeros((7, 60, 108), np.uint8)
    holes[:, 20:40, 30:70] = 1
    frames = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255.0
    masks = torch.from_numpy(holes)[:, None].float()
    method = E2FGVIInpainter(hq_model, device="cpu")
    assert isinstance(method, Inpainter) and method.protocol_frames
    out = method.inpaint(frames, masks)
    assert out.shape == frames.shape and out.dtype == torch.float32
    quarters = out.permute(0, 2, 3, 1).numpy().astype(np.float64) * 255.0 * 4
    assert np.abs(quarters - np.round(quarters)).max() < 1e-3
    assert np.array_equal(np.round(quarters[holes == 0] / 4), video[holes == 0])
    fractional = np.round(quarters) % 4 != 0
    assert fractional[:6].any() and not fractional[6].any()  # frame 6 is in the second window only


def test_the_harness_scores_protocol_frames_unrounded(tmp_path):
    """A method declaring ``protocol_frames`` is scored on its float values (E2FGVI's merged composites,
    e.g. 100.5), a plain method on its output truncated to uint8 (100)."""
    from PIL import Image

    from triptych.benchmarks.vos import Video, VideoCompletion

    gt = np.full((4, 8, 3), 30, np.uint8)
    hole = np.zeros((4, 8), np.uint8)
    hole[1:3, 2:5] = 255
    paths = []
    for i in range(2):
        Image.fromarray(gt).save(tmp_path / f"f{i}.png")
        Image.fromarray(hole).save(tmp_path / f"m{i}.png")
        paths.append((tmp_path / f"f{i}.png", tmp_path / f"m{i}.png"))
    video = Video("v", tuple(p for p, _ in paths), tuple(m for _, m in paths))
    task = VideoCompletion({"size": [8, 4], "mask_dilation": 0})

    class Plain:
        def inpaint(self, x, m):
            return torch.full_like(x, 100.5 / 255)

    class Protocol(Plain):
        protocol_frames = True

    plain, protocol = task.predict(Plain(), video), task.predict(Protocol(), video)
    assert plain.dtype == np.uint8 and (plain == 100).all()
    assert protocol.dtype == np.float32
    composite, _ = task.composite(video, protocol, 0)
    assert np.allclose(composite[hole > 0] * 255, 100.5, atol=1e-4)
    assert np.allclose(composite[hole == 0] * 255, 30, atol=1e-9)
    assert (task.composite(video, plain, 0)[0][hole > 0] == 100).all()


def test_registry_entries_and_missing_weights_error(monkeypatch, tmp_path):
    for name, weights in (("e2fgvi", "e2fgvi"), ("e2fgvi-hq", "e2fgvi_hq")):
        spec = registry().method(name)
        assert spec.task == "video_inpainting" and spec.weights == (weights,) and callable(spec.load())
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path))
    for factory, name in ((make_e2fgvi, "e2fgvi"), (make_e2fgvi_hq, "e2fgvi_hq")):
        entry = get_spec(name)
        with pytest.raises(MissingWeightsError) as info:
            factory()
        text = f"{info.value}\n{info.value.fix}"
        assert entry.filename in text and entry.urls[0] in text and f"triptych weights import {name}" in text


def test_user_checkpoint_through_the_registry_and_the_inpaint_command(hq_model, tmp_path, run_cli):
    checkpoint = tmp_path / "E2FGVI-HQ-CVPR22.pth"
    torch.save(hq_model.state_dict(), checkpoint)
    spec = registry().method("e2fgvi-hq")
    method = build_method(type(spec)(**{**spec.__dict__, "params": {**spec.params, "weights": str(checkpoint),
                                                                      "device": "cpu"}}))
    assert method.weights == {"name": None, "path": str(checkpoint), "sha256": sha256_file(checkpoint),
                              "registered": False, "user_supplied": True}
    assert all(torch.equal(method.model.state_dict()[k], v) for k, v in hq_model.state_dict().items())

    frames_dir, masks_dir, out_dir = tmp_path / "frames", tmp_path / "masks", tmp_path / "out"
    frames_dir.mkdir()
    masks_dir.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, size=(60, 108, 3), dtype=np.uint8)).save(frames_dir / f"{i:05d}.png")
        hole = np.zeros((60, 108), np.uint8)
        hole[10:30, 20:50] = 255
        Image.fromarray(hole).save(masks_dir / f"{i:05d}.png")
    code, stdout, stderr = run_cli("inpaint", "--method", "e2fgvi-hq", "--weights", checkpoint, "--frames", frames_dir,
                                   "--masks", masks_dir, "--out", out_dir)
    assert code == 0, stderr
    assert "3 frames written" in stdout and sorted(p.name for p in out_dir.iterdir()) == [f"{i:05d}.png" for i in range(3)]
    code, _, stderr = run_cli("inpaint", "--method", "mean_fill", "--weights", checkpoint, "--frames", frames_dir,
                              "--masks", masks_dir, "--out", out_dir)
    assert code != 0 and "takes no weights file" in stderr
