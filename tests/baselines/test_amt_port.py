"""The AMT-S/L/G port against the golden fixtures of the original code (MCG-NKU/AMT @ 70f988f).

Every expected number, invocation and tolerance is read from ``shared/fixtures/vfi`` and
``shared/fixtures/model_ports/amt_{l,g}``. Each model runs one forward per invocation (module-scoped
models; AMT-G on 240x432 takes a few seconds on 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from triptych.baselines.amt import (
    AMTInterpolator,
    InputPadder,
    build_amt,
    load_amt_state,
    make_amt_s,
)
from triptych.baselines.amt_blocks import CorrelationPyramid
from triptych.benchmarks.vfi import FrameInterpolation, Triplet
from triptych.errors import InputError, TriptychError
from triptych.media import read_rgb
from triptych.methods import Interpolator, build_method
from triptych.registry import MethodSpec, registry
from triptych.weights import MissingWeightsError, load_state_dict, sha256_file
from triptych.weights_rule import apply_weights_rule

VARIANTS = ("S", "L", "G")
S_CASES = ("vimeo90k_ucf101_demo", "snu_film", "xiph")


def _img2tensor(path: Path) -> torch.Tensor:
    """AMT utils.utils img2tensor(read(png)): uint8 HWC -> permute -> (1, 3, H, W) / 255 (strides kept)."""
    return torch.from_numpy(read_rgb(path)).permute(2, 0, 1).unsqueeze(0) / 255.0


def _embt(t: float = 0.5) -> torch.Tensor:
    return torch.tensor(t).float().view(1, 1, 1, 1)


@pytest.fixture(scope="module")
def vfi_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "vfi"


@pytest.fixture(scope="module")
def s_fixture(vfi_dir: Path, vfi_expected: dict) -> dict:
    return vfi_expected["amt_s_port_fixture"]


@pytest.fixture(scope="module")
def s_weights(vfi_dir: Path, s_fixture: dict) -> Path:
    path = vfi_dir / s_fixture["weights_file"]
    assert sha256_file(path) == s_fixture["weights_sha256"]
    return path


@pytest.fixture(scope="module")
def amt_s(s_weights: Path):
    model = build_amt("S")
    load_amt_state(model, load_state_dict(s_weights), str(s_weights))
    return model.eval()


@pytest.fixture(scope="module")
def triplet_dir(vfi_dir: Path, s_fixture: dict) -> Path:
    return vfi_dir / s_fixture["triplet"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_keys_shapes_and_parameter_counts_equal_the_reference(vfi_dir, variant):
    listing = json.loads((vfi_dir / f"amt_{variant.lower()}_keys.json").read_text())
    model = build_amt(variant)
    ours = [(key, list(t.shape), str(t.dtype).removeprefix("torch.")) for key, t in model.state_dict().items()]
    assert ours == [(e["key"], e["shape"], e["dtype"]) for e in listing["keys"]]
    assert sum(p.numel() for p in model.parameters()) == listing["total_parameters"]
    assert len(list(model.buffers())) == listing["num_buffer_tensors"]
    assert model.config.parameters == listing["total_parameters"]


@pytest.mark.parametrize("case", S_CASES)
def test_amt_s_seed0_matches_reference_output(amt_s, triplet_dir, vfi_dir, vfi_expected, s_fixture, case):
    spec = s_fixture["cases"][case]
    tolerance = vfi_expected["suggested_tolerances"]["model_output_max_abs"]
    img0, img1 = _img2tensor(triplet_dir / "i0.png"), _img2tensor(triplet_dir / "i1.png")
    padder = InputPadder(img0.shape, spec["padder_divisor"]) if spec["padder_divisor"] else None
    if padder is not None:
        assert list(padder.pad_lrtb) == spec["padder_pad_lrtb"]
        img0, img1 = padder.pad(img0), padder.pad(img1)
    assert list(img0.shape) == spec["padded_input_shape"]
    with torch.no_grad():
        out = amt_s(img0, img1, _embt(), spec["scale_factor"], eval=True, keep_pre_clamp=True)
    assert torch.equal(out["imgt_pred"], out["imgt_pred_pre_clamp"].clamp(0, 1))
    pre = out["imgt_pred_pre_clamp"] if padder is None else padder.unpad(out["imgt_pred_pre_clamp"])
    expected = np.load(vfi_dir / spec["file_pre_clamp_npy"])
    assert pre.shape == expected.shape
    assert float(np.abs(pre.numpy() - expected).max()) <= tolerance


@pytest.mark.parametrize("variant", ("L", "G"))
def test_amt_l_g_with_rule_weights_match_reference_output(fixtures_dir, variant):
    folder = fixtures_dir / f"model_ports/amt_{variant.lower()}"
    expected = json.loads((folder / "expected.json").read_text())
    for name, digest in expected["input"]["sha256"].items():
        assert sha256_file(folder / name) == digest, name
    model = build_amt(variant)
    rule = expected["weights"]
    assert apply_weights_rule(model, rule["seed"], rule["gain"]) == rule["state_sha256"]
    model.eval()
    with torch.no_grad():
        out = model(_img2tensor(folder / "i0.png"), _img2tensor(folder / "i1.png"), _embt(), 1.0, eval=True,
                    keep_pre_clamp=True)
    reference = np.load(folder / "out_pre_clamp.npy")
    pre = out["imgt_pred_pre_clamp"].numpy()
    assert pre.shape == reference.shape
    assert float(np.abs(pre - reference).max()) <= expected["tolerances"]["out_pre_clamp.npy"]["max_abs"]
    assert torch.equal(out["imgt_pred"], out["imgt_pred_pre_clamp"].clamp(0, 1))


def test_strict_loading_names_missing_extra_and_misshaped_keys():
    model = build_amt("S")
    state = model.state_dict()
    missing = {k: v for k, v in state.items() if k != "comb_block.2.bias"}
    with pytest.raises(TriptychError, match=r"1 missing key\(s\): comb_block\.2\.bias") as info:
        load_amt_state(model, missing, "ckpt.pth")
    assert "ckpt.pth" in str(info.value) and info.value.fix
    with pytest.raises(TriptychError, match=r"1 unexpected key\(s\): extra\.weight"):
        load_amt_state(model, {**state, "extra.weight": torch.zeros(1)})
    with pytest.raises(TriptychError, match=r"shape mismatch"):
        load_amt_state(model, {**state, "comb_block.2.bias": torch.zeros(4)})
    prefixed = {f"module.{k}": v for k, v in state.items()}
    with pytest.raises(TriptychError, match="'module.'"):
        load_amt_state(model, prefixed)


def test_wrapper_through_the_harness_matches_the_clamped_reference(s_weights, triplet_dir, vfi_dir, vfi_expected,
                                                                     s_fixture):
    """The factory with a user file, built like a registry entry, run by the VFI task module."""
    spec = MethodSpec("amt-s-seed0", "frame_interpolation", 1, "AMT-S, fixture weights",
                      "triptych.baselines.amt:make_amt_s", (), {"weights": str(s_weights)}, "test")
    method = build_method(spec)
    assert isinstance(method, Interpolator)
    assert method.weights == {"name": None, "path": str(s_weights), "sha256": s_fixture["weights_sha256"],
                              "registered": False, "user_supplied": True}
    triplet = Triplet("tennis/011", triplet_dir / "i0.png", triplet_dir / "gt.png", triplet_dir / "i1.png")
    prediction = FrameInterpolation().predict(method, triplet)  # HWC float32, checked (3, H, W) and finite
    case = s_fixture["cases"]["vimeo90k_ucf101_demo"]
    expected = np.clip(np.load(vfi_dir / case["file_pre_clamp_npy"])[0].transpose(1, 2, 0), 0, 1)
    assert prediction.shape == expected.shape
    assert float(np.abs(prediction - expected).max()) <= vfi_expected["suggested_tolerances"]["model_output_max_abs"]


def test_wrapper_applies_the_padded_scaled_invocation(amt_s, triplet_dir, vfi_dir, vfi_expected, s_fixture):
    case = s_fixture["cases"]["snu_film"]
    method = AMTInterpolator(amt_s, case["padder_divisor"], case["scale_factor"])
    frame0, frame1 = _img2tensor(triplet_dir / "i0.png")[0], _img2tensor(triplet_dir / "i1.png")[0]
    out = method.interpolate(frame0, frame1, 0.5)
    assert out.shape == frame0.shape and out.dtype == torch.float32
    expected = np.clip(np.load(vfi_dir / case["file_pre_clamp_npy"])[0], 0, 1)
    assert float(np.abs(out.numpy() - expected).max()) <= vfi_expected["suggested_tolerances"]["model_output_max_abs"]


def test_registry_entries_need_the_released_checkpoints(monkeypatch, tmp_path):
    for name, weights in (("amt-s", "amt_s"), ("amt-l", "amt_l"), ("amt-g", "amt_g")):
        spec = registry().method(name)
        assert spec.task == "frame_interpolation" and spec.weights == (weights,) and callable(spec.load())
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match="triptych weights import amt_s"):
        make_amt_s()


def test_input_errors_are_clear():
    method = AMTInterpolator(build_amt("S"))
    frame = torch.rand(3, 40, 40)
    with pytest.raises(InputError, match="not a multiple of 16"):
        method.interpolate(frame, frame, 0.5)
    with pytest.raises(InputError, match="outside"):
        method.interpolate(torch.rand(3, 32, 32), torch.rand(3, 32, 32), 1.0)
    with pytest.raises(InputError, match=r"\(3, H, W\)"):
        method.interpolate(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), 0.5)
    with pytest.raises(TriptychError, match="pad_divisor"):
        AMTInterpolator(build_amt("S"), pad_divisor=0)


def test_input_padder_split_and_round_trip():
    x = torch.arange(2 * 3 * 30 * 45, dtype=torch.float32).view(2, 3, 30, 45)
    padder = InputPadder(x.shape, 16)
    assert padder.pad_lrtb == (1, 2, 1, 1)  # 45 -> 48 (3 = 1 + 2), 30 -> 32 (2 = 1 + 1)
    padded = padder.pad(x)
    assert padded.shape[-2:] == (32, 48) and torch.equal(padder.unpad(padded), x)
    assert torch.equal(padded[..., 0, 1:-2], x[..., 0, :])  # replicate
    assert InputPadder((240, 432), 16).pad_lrtb == (0, 0, 0, 0)


def test_correlation_window_order_puts_the_first_offset_on_x():
    """One bright target pixel: the window channel that sees it names the (x, y) offset convention."""
    fmap0 = torch.zeros(1, 1, 16, 16)
    fmap1 = torch.zeros(1, 1, 16, 16)
    fmap0[0, 0, 5, 5] = 1.0
    fmap1[0, 0, 5, 7] = 1.0  # two columns right of (x=5, y=5)
    corr = CorrelationPyramid(fmap0, fmap1, levels=1, radius=3)
    coords = torch.stack(torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")[::-1])[None]
    forward, _ = corr.lookup(coords, coords)
    channel = int(forward[0, :, 5, 5].argmax())
    assert divmod(channel, 7) == (3 + 2, 3)  # first index carries the x offset +2


def test_user_pth_files_load_wrapped_or_plain(tmp_path):
    state = build_amt("S").state_dict()
    wrapped, plain = tmp_path / "wrapped.pth", tmp_path / "plain.pth"
    torch.save({"state_dict": state}, wrapped)
    torch.save(state, plain)
    for path in (wrapped, plain):
        method = make_amt_s(weights=str(path))
        assert all(torch.equal(method.model.state_dict()[k], v) for k, v in state.items())
        assert method.weights["sha256"] == sha256_file(path) and method.weights["user_supplied"]
    torch.save({"state_dict": {k: v for k, v in state.items() if not k.startswith("comb_block")}}, wrapped)
    with pytest.raises(TriptychError, match=r"missing key\(s\): comb_block\.0\.weight"):
        make_amt_s(weights=str(wrapped))


def test_the_benchmark_variant_sets_the_amt_invocation(fixtures_dir):
    """snu_film.py invokes AMT with padding divisor 20 and scale 0.8: a benchmark variant that says so
    reaches the method's factory, overriding the method entry's defaults."""
    from triptych.methods import build_method
    from triptych.registry import registry

    weights = fixtures_dir / "vfi/amt_s_random_seed0.safetensors"
    spec = registry().method("amt-s")
    spec = type(spec)(**{**spec.__dict__, "params": {**spec.params, "weights": str(weights)}})
    method = build_method(spec, invocation={"pad_divisor": 20, "scale_factor": 0.8, "unrelated": 1})
    assert (method.pad_divisor, method.scale_factor) == (20, 0.8)
