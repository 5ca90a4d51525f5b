"""Reduced precision of the model ports (``triptych.baselines.precision``): bf16 on CPU against the float32
golden fixtures of the authors' code (shared/fixtures/model_ports), fp16 refused off CUDA, and each reduced
precision registered as its own method that never pairs with published rows.

bf16 keeps 8 bits of mantissa, so its outputs are compared with loose tolerances stated here, not the
fixtures' float32 ones: measured on CPU, AMT-L's clamped output differs from the fixture by at most 0.020
(mean 6.2e-4) in [0, 1], E2FGVI-HQ's window by at most 0.063 (mean 6.1e-3) in [-1, 1]. The bounds below
leave 3-5x room (other CPUs pick other kernels) and are still far below a broken model (errors of order 1).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from triptych.baselines.amt import AMTInterpolator, build_amt
from triptych.baselines.e2fgvi import E2FGVI, E2FGVIInpainter
from triptych.baselines.precision import SlowPrecisionWarning, native_cpu_bf16
from triptych.baselines.video_window import to_model_input
from triptych.errors import InputError
from triptych.media import read_rgb
from triptych.methods import build_method
from triptych.published import run_pairing
from triptych.registry import registry
from triptych.weights_rule import apply_weights_rule

AMT_BF16 = {"max_abs": 0.1, "mean_abs": 5e-3}
E2FGVI_BF16 = {"max_abs": 0.25, "mean_abs": 0.02}
REDUCED = {"e2fgvi": ("bf16", "fp16"), "e2fgvi-hq": ("bf16", "fp16"), "amt-l": ("bf16", "fp16"),
           "amt-g": ("bf16", "fp16")}


def _rule_model(fixtures_dir: Path, name: str, model: torch.nn.Module) -> torch.nn.Module:
    rule = json.loads((fixtures_dir / f"model_ports/{name}/expected.json").read_text())["weights"]
    apply_weights_rule(model, rule["seed"], rule["gain"])
    return model.eval()


@pytest.mark.filterwarnings("ignore::triptych.baselines.precision.SlowPrecisionWarning")  # emulated is still exact to test
def test_amt_l_bf16_on_cpu_stays_near_the_float32_fixture(fixtures_dir):
    folder = fixtures_dir / "model_ports/amt_l"
    model = _rule_model(fixtures_dir, "amt_l", build_amt("L"))
    frames = [torch.from_numpy(read_rgb(folder / f"i{i}.png")).permute(2, 0, 1) / 255.0 for i in (0, 1)]
    reference = np.clip(np.load(folder / "out_pre_clamp.npy")[0], 0, 1)
    fp32 = AMTInterpolator(model).interpolate(*frames, 0.5)
    bf16 = AMTInterpolator(model, precision="bf16").interpolate(*frames, 0.5)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    diff = np.abs(bf16.numpy() - reference)
    assert diff.max() <= AMT_BF16["max_abs"] and diff.mean() <= AMT_BF16["mean_abs"]
    assert np.abs(bf16.numpy() - fp32.numpy()).max() > 1e-4  # the network really ran in bfloat16


@pytest.mark.slow
@pytest.mark.skipif(not native_cpu_bf16(), reason="this CPU has no bfloat16 instructions: oneDNN emulates bf16 "
                                                  "and a window takes over 15 minutes (docs/performance.md)")
@pytest.mark.parametrize("name", ("e2fgvi", "e2fgvi_hq"))
def test_e2fgvi_bf16_window_on_cpu_stays_near_the_float32_fixture(fixtures_dir, name):
    model = _rule_model(fixtures_dir, name, E2FGVI(name == "e2fgvi_hq"))
    data = np.load(fixtures_dir / "model_ports/e2fgvi/inputs_u8.npz")
    x, m = to_model_input(data["frames"], (data["masks"] // 255).astype(np.uint8))
    pred = E2FGVIInpainter(model, device="cpu", precision="bf16").window(x, m, int(data["num_local_frames"]))
    rows = json.loads((fixtures_dir / f"model_ports/{name}/expected.json").read_text())["pred_imgs_rows_kept"]
    diff = np.abs(pred.numpy()[rows] - np.load(fixtures_dir / f"model_ports/{name}/pred_imgs.npy"))
    assert pred.dtype == torch.float32
    assert diff.max() <= E2FGVI_BF16["max_abs"] and diff.mean() <= E2FGVI_BF16["mean_abs"]
    assert diff.max() > 1e-3  # the network really ran in bfloat16 (float32 stays within 2e-4)


def test_bf16_on_a_cpu_without_bf16_instructions_warns_that_it_is_emulated():
    model = build_amt("S")
    if native_cpu_bf16():
        with warnings.catch_warnings():
            warnings.simplefilter("error", SlowPrecisionWarning)
            AMTInterpolator(model, precision="bf16")
    else:
        with pytest.warns(SlowPrecisionWarning, match="AMT-S: this CPU has no bfloat16 instructions"):
            AMTInterpolator(model, precision="bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowPrecisionWarning)
        AMTInterpolator(model)  # fp32 never warns


def test_fp16_needs_cuda_and_unknown_precisions_are_refused():
    with pytest.raises(InputError, match="fp16 runs on CUDA only") as info:
        E2FGVIInpainter(E2FGVI(True), device="cpu", precision="fp16")
    assert "--device cuda" in info.value.fix and "bf16" in info.value.fix
    with pytest.raises(InputError, match="AMT-L: precision fp16 runs on CUDA only"):
        AMTInterpolator(build_amt("L"), precision="fp16")
    with pytest.raises(InputError, match="precision 'int8' is not one of fp32, bf16, fp16"):
        AMTInterpolator(build_amt("L"), precision="int8")


@pytest.mark.parametrize("base", REDUCED)
def test_each_reduced_precision_is_its_own_method_that_never_pairs(base):
    fp32 = registry().method(base)
    assert "precision" not in fp32.params
    for precision in REDUCED[base]:
        spec = registry().method(f"{base}-{precision}")
        assert spec.callable == fp32.callable and spec.weights == fp32.weights and spec.task == fp32.task
        assert spec.params == {**fp32.params, "precision": precision}
        pairing = run_pairing({"method": spec.name, "weights": []})
        assert pairing.label is None and "has no published counterpart" in pairing.reason


def test_the_registered_fp16_method_refuses_to_build_on_cpu(tmp_path, fixtures_dir):
    """``amt-l-fp16`` as registered (device cpu), given a weights file: refused with the fix."""
    from safetensors.torch import save_file

    weights = tmp_path / "amt_l.safetensors"
    save_file(_rule_model(fixtures_dir, "amt_l", build_amt("L")).state_dict(), str(weights))
    spec = registry().method("amt-l-fp16")
    with pytest.raises(InputError, match="AMT-L: precision fp16 runs on CUDA only"):
        build_method(replace(spec, params={**spec.params, "weights": str(weights)}))
