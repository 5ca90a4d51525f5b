"""The PWC-Net port of FloLPIPS's flows (``triptych.metrics.pwcnet``): the cost volume against a naive loop,
the warp against the reference's formula by hand, strict loading of a rule-built state dict with the keys and
shapes of the released ``network-default.pytorch`` (``tests/data/pwcnet_default_keys.json``, written from
VFIBenchmark @ 40a05ec ``metrics/flolpips/pwcnet.py``'s layer definitions) through the weights registry, the
input / output resizing by hand on a network whose flow is its biases, the flows of the reference's own code
on the same rule-built weights (a stored known answer, ``scripts/make_pwcnet_reference_flows.py``),
determinism, and the clear refusal without weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from triptych import weights
from triptych.weights import MissingWeightsError
from triptych.errors import InputError
from triptych.metrics import pwcnet, temporal
from triptych.weights_rule import rule_tensor

from conftest import REPO

torch.set_num_threads(1)
KEYS = json.loads((REPO / "tests" / "data" / "pwcnet_default_keys.json").read_text())["keys"]


def naive_correlation(first: np.ndarray, second: np.ndarray, radius: int) -> np.ndarray:
    """The cupy kernel's arithmetic, one output value at a time (float64)."""
    n, c, h, w = first.shape
    side = 2 * radius + 1
    out = np.zeros((n, side * side, h, w))
    for b in range(n):
        for y in range(h):
            for x in range(w):
                for dy in range(-radius, radius + 1):
                    for dx in range(-radius, radius + 1):
                        if 0 <= y + dy < h and 0 <= x + dx < w:
                            total = sum(float(first[b, k, y, x]) * float(second[b, k, y + dy, x + dx]) for k in range(c))
                            out[b, (dy + radius) * side + dx + radius, y, x] = total / c
    return out


@pytest.mark.parametrize("radius", [4, 2])
def test_correlation_equals_a_naive_loop(radius):
    rng = np.random.default_rng(radius)
    first, second = (rng.standard_normal((2, 5, 6, 7)).astype(np.float32) for _ in range(2))
    got = pwcnet.correlation(torch.from_numpy(first), torch.from_numpy(second), radius).numpy()
    assert got.shape == (2, (2 * radius + 1) ** 2, 6, 7)
    np.testing.assert_allclose(got, naive_correlation(first, second, radius), rtol=0, atol=1e-6)
    with pytest.raises(InputError, match="shapes"):
        pwcnet.correlation(torch.from_numpy(first), torch.from_numpy(second[:, :, :5]))


def test_backwarp_follows_the_references_grid_and_flow_normalisation():
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.standard_normal((1, 3, 5, 8)).astype(np.float32))
    zero = torch.zeros(1, 2, 5, 8)
    torch.testing.assert_close(pwcnet.backwarp(image, zero), image, rtol=0, atol=1e-6)  # pixel-centre grid
    # the flow is divided by (W - 1) / 2 on an align_corners=False grid, so a flow of (W - 1) / W px moves
    # exactly one pixel: out[x] = image[x + 1], and the last column (partly outside) is masked to 0
    flow = torch.zeros(1, 2, 5, 8)
    flow[:, 0] = 7.0 / 8.0
    out = pwcnet.backwarp(image, flow)
    torch.testing.assert_close(out[..., :-1], image[..., 1:], rtol=0, atol=1e-5)
    assert float(out[..., -1].abs().max()) == 0.0
    flow[:, 0], flow[:, 1] = 0.0, 4.0 / 5.0  # one row down
    out = pwcnet.backwarp(image, flow)
    torch.testing.assert_close(out[..., :-1, :], image[..., 1:, :], rtol=0, atol=1e-5)


def test_key_list_is_the_released_layout_and_loads_strictly():
    model = pwcnet.build_pwcnet()
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == [(k, s) for k, s in KEYS]
    assert sum(int(np.prod(s)) for _, s in KEYS) == 9374274


def _rule_file(tmp_path: Path) -> Path:
    state = {k: torch.from_numpy(rule_tensor(k, tuple(s), 7, 1.0)) for k, s in KEYS}
    path = tmp_path / "network-default.pytorch"
    torch.save(state, path)
    return path


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    pwcnet.load_pwcnet.cache_clear()
    yield tmp_path
    pwcnet.load_pwcnet.cache_clear()


def test_rule_built_checkpoint_imports_through_the_registry_and_gives_deterministic_flows(home):
    weights.import_file("pwcnet_default", _rule_file(home))  # trusted on first use: it fits build_pwcnet strictly
    model = pwcnet.load_pwcnet()
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (70, 110, 3), dtype=np.uint8)
    a, b = base[:, :100], base[:, 3:103]  # any size: resized to 128 x 128 inside
    flow = pwcnet.pwc_flow(model, np.ascontiguousarray(a), np.ascontiguousarray(b))
    assert flow.shape == (70, 100, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    assert float(np.abs(flow).max()) > 0.0
    np.testing.assert_array_equal(flow, pwcnet.pwc_flow(model, np.ascontiguousarray(a), np.ascontiguousarray(b)))
    assert not np.array_equal(flow, pwcnet.pwc_flow(model, np.ascontiguousarray(b), np.ascontiguousarray(a)))
    with pytest.raises(InputError, match="uint8"):
        pwcnet.pwc_flow(model, a.astype(np.float32), b.astype(np.float32))


def test_flows_equal_the_reference_codes_on_the_same_weights(home):
    """Known answer: ``tests/data/pwcnet_reference_flows.npz``, flows of danier97/flolpips @ 26ea00f's own
    ``pwcnet.py`` (= VFIBenchmark @ 40a05ec's) with the same rule-built weights, on CPU with an unfold
    stand-in for its cupy cost volume (``scripts/make_pwcnet_reference_flows.py``); frames of sizes that are
    not multiples of 64, so the resize in and out is covered."""
    weights.import_file("pwcnet_default", _rule_file(home))
    model = pwcnet.load_pwcnet()
    reference = np.load(REPO / "tests" / "data" / "pwcnet_reference_flows.npz")
    for height, width, shift in ((70, 100, 3), (90, 120, 5)):
        rng = np.random.default_rng(height * 1000 + width)
        base = rng.integers(0, 256, (height, width + shift, 3), dtype=np.uint8)
        a, b = np.ascontiguousarray(base[:, :width]), np.ascontiguousarray(base[:, shift:shift + width])
        want = reference[f"flow_{height}x{width}"]
        assert float(np.abs(want).max()) > 1.0
        np.testing.assert_allclose(pwcnet.pwc_flow(model, a, b), want, rtol=0, atol=1e-5)


def test_a_pre_zip_pickle_is_refused_and_its_tensors_only_resave_imports(home):
    """The released 2018 file predates torch's zip format; as the README says, it is re-saved tensors-only."""
    state = torch.load(_rule_file(home), weights_only=True)
    legacy = home / "legacy.pytorch"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(weights.UntrustedWeightsError, match="bare pickle"):
        weights.import_file("pwcnet_default", legacy)
    torch.save(torch.load(legacy, weights_only=True), home / "pwcnet.pt")
    weights.import_file("pwcnet_default", home / "pwcnet.pt")
    assert pwcnet.load_pwcnet().state_dict().keys() == state.keys()


def test_wrong_checkpoint_is_refused_naming_the_keys(home):
    state = {k: torch.zeros(s) for k, s in KEYS}
    state["netExtractor.netOne.0.weight"] = state.pop("moduleExtractor.moduleOne.0.weight")
    path = home / "renamed.pt"
    torch.save(state, path)
    with pytest.raises(InputError, match="moduleExtractor.moduleOne.0.weight"):
        pwcnet.load_pwcnet(path)


def test_input_resize_and_flow_rescale_by_hand():
    """All weights 0, level 2's flow bias c and the refiner's last bias r: the network's flow is c + r
    everywhere, so the output is 20 (c + r) scaled by W / W64 and H / H64 (here 100 / 128 and 70 / 128)."""
    model = pwcnet.build_pwcnet()
    state = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    state["moduleTwo.moduleSix.0.bias"] = torch.tensor([0.25, -0.5])
    state["moduleRefiner.moduleMain.12.bias"] = torch.tensor([0.5, 0.125])
    model.load_state_dict(state, strict=True)
    frames = torch.rand(2, 1, 3, 70, 100)
    with torch.inference_mode():
        flow = model(frames[0], frames[1])
    assert flow.shape == (1, 2, 70, 100)
    torch.testing.assert_close(flow[0, 0], torch.full((70, 100), 20 * 0.75 * 100 / 128), rtol=1e-6, atol=0)
    torch.testing.assert_close(flow[0, 1], torch.full((70, 100), 20 * -0.375 * 70 / 128), rtol=1e-6, atol=0)


def test_flolpips_pwcnet_refuses_clearly_without_weights(home):
    frames = [np.zeros((64, 64, 3), np.uint8)] * 2
    with pytest.raises(MissingWeightsError, match="pwcnet_default") as info:
        pwcnet.load_pwcnet()
    assert "weights import pwcnet_default" in str(info.value)
    with pytest.raises(MissingWeightsError):
        temporal.flolpips(frames, frames, flow="pwcnet")
    with pytest.raises(InputError, match="dis or pwcnet"):
        temporal.flolpips(frames, frames, flow="raft")


def test_measure_flolpips_pwcnet_end_to_end(home, run_cli):
    """``triptych measure flolpips --variant pwcnet`` with the imported PWC-Net and a user AlexNet trunk is
    ``flolpips_values`` (whose arithmetic test_temporal_metrics.py checks against VFIBenchmark's
    ``FloLPIPS.forward``) on the port's flows; the rows are labelled as a user trunk's."""
    import functools

    import torchvision
    from PIL import Image

    from triptych.metrics.perceptual import LpipsNet
    from triptych.weights_rule import rule_state_dict

    weights.import_file("pwcnet_default", _rule_file(home))
    alex = torch.nn.Module()
    alex.features = torchvision.models.alexnet(weights=None).features
    trunk_state = rule_state_dict(alex, 0, 1.0)
    torch.save(trunk_state, home / "alex.pth")
    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, (64, 90, 3), dtype=np.uint8)
    gt = [np.ascontiguousarray(base[:, 2 * t:2 * t + 72]) for t in range(3)]
    pred = [np.clip(f.astype(int) + rng.integers(-30, 31, f.shape), 0, 255).astype(np.uint8) for f in gt]
    for name, frames in (("pred", pred), ("gt", gt)):
        (home / name / "clip").mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(home / name / "clip" / f"{t:05d}.png")
    code, out, err = run_cli("measure", "flolpips", "--variant", "pwcnet", "--pred", home / "pred", "--gt",
                             home / "gt", "--weights", home / "alex.pth", "--json")
    assert code == 0, err
    doc = json.loads(out)
    network = LpipsNet("alex", trunk_state, weights.load("lpips_lin_alex_v0_1"))
    want = temporal.flolpips_values(network, pred, gt, functools.partial(pwcnet.pwc_flow, pwcnet.load_pwcnet()))
    assert doc["aggregate"]["value"] == pytest.approx(float(np.mean(want)), rel=1e-6) and min(want) > 0
    assert doc["metric_variant"].startswith("pwcnet+user-")
