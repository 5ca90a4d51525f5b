"""Classical VFI baselines: known answers on a translated scene, the fixture's i0 and blend entries
(``shared/fixtures/vfi/expected.json``), arbitrary t, and the registry / scoring path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import vfi_triplet_cases
from triptych.baselines.vfi import DISFlow, FrameRepeat, LinearBlend
from triptych.benchmarks.vfi import FrameInterpolation, Triplet
from triptych.errors import InputError
from triptych.methods import Interpolator, build_method
from triptych.metrics.psnr import psnr_amt
from triptych.metrics.ssim import ssim_matlab3d
from triptych.registry import registry

SHIFT = 12  # px of horizontal motion between frame0 and frame1 (plus SHIFT / 2 vertically)
MARGIN = 16  # border left out of the comparison: content entering the frame cannot be interpolated


class Scene:
    """A smooth RGB texture in [0, 1], a sum of random sinusoids, evaluated exactly at any translation:
    the frame at (dx, dy) shows the scene moved by (-dx, -dy), so every in-between frame is known."""

    def __init__(self, seed: int = 0, waves: int = 12) -> None:
        rng = np.random.default_rng(seed)
        self.freq = rng.uniform(-0.15, 0.15, (waves, 2))
        self.phase = rng.uniform(0, 2 * np.pi, waves)
        self.amp = rng.uniform(0.2, 1.0, (waves, 3))

    def frame(self, dx: float, dy: float, size: tuple[int, int] = (128, 160)) -> torch.Tensor:
        y, x = np.mgrid[0:size[0], 0:size[1]].astype(np.float64)
        waves = np.sin(self.freq[:, 0, None, None] * (x + dx) + self.freq[:, 1, None, None] * (y + dy)
                       + self.phase[:, None, None])
        rgb = np.einsum("khw,kc->chw", waves, self.amp) / self.amp.sum(0)[:, None, None]  # in [-1, 1]
        return torch.from_numpy((0.5 + 0.5 * rgb).astype(np.float32))


def _inner_psnr(pred: torch.Tensor, gt: torch.Tensor) -> float:
    m = MARGIN
    return psnr_amt(pred[:, m:-m, m:-m].permute(1, 2, 0).numpy(), gt[:, m:-m, m:-m].permute(1, 2, 0).numpy())


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene()


@pytest.mark.parametrize("t", [0.5, 0.25, 0.75, 3 / 8])
def test_dis_flow_recovers_a_translated_texture_far_better_than_blending(scene, t):
    frame0, frame1 = scene.frame(0, 0), scene.frame(SHIFT, SHIFT / 2)
    gt = scene.frame(t * SHIFT, t * SHIFT / 2)
    flow = _inner_psnr(DISFlow().interpolate(frame0, frame1, t=t), gt)
    blend = _inner_psnr(LinearBlend().interpolate(frame0, frame1, t=t), gt)
    assert flow > 50.0, (flow, blend)  # DIS recovers a pure translation almost exactly (~96 dB at t = 0.5)
    assert flow > blend + 15.0, (flow, blend)


@pytest.mark.parametrize("t", [0.5, 0.25])
def test_occlusion_reasoning_helps_where_content_enters_the_frame(scene, t):
    """At the borders, content visible in one frame only fails the forward-backward check; taking it
    from the frame that sees it beats the plain (1 - t) / t blend of the warps (a huge eps)."""
    frame0, frame1 = scene.frame(0, 0), scene.frame(SHIFT, SHIFT / 2)
    gt = scene.frame(t * SHIFT, t * SHIFT / 2).permute(1, 2, 0).numpy()
    aware = psnr_amt(DISFlow().interpolate(frame0, frame1, t=t).permute(1, 2, 0).numpy(), gt)
    plain = psnr_amt(DISFlow(eps=1e6).interpolate(frame0, frame1, t=t).permute(1, 2, 0).numpy(), gt)
    assert aware > plain + 0.5, (aware, plain)


def test_dis_flow_endpoints_return_the_inputs(scene):
    frame0, frame1 = scene.frame(0, 0), scene.frame(SHIFT, 0)
    method = DISFlow()
    assert torch.equal(method.interpolate(frame0, frame1, t=0.0), frame0)
    assert torch.equal(method.interpolate(frame0, frame1, t=1.0), frame1)


def test_dis_flow_of_equal_frames_is_the_frame(scene):
    frame = scene.frame(0, 0)
    assert torch.allclose(DISFlow().interpolate(frame, frame.clone()), frame, atol=1e-6)


def test_dis_flow_is_deterministic_and_shaped(scene):
    frame0, frame1 = scene.frame(0, 0), scene.frame(SHIFT, SHIFT / 2)
    a, b = DISFlow().interpolate(frame0, frame1), DISFlow().interpolate(frame0, frame1)
    assert a.dtype == torch.float32 and a.shape == frame0.shape and torch.equal(a, b)


@pytest.mark.parametrize("t,expected", [(0.5, 0), (0.25, 0), (0.0, 0), (0.625, 1), (1.0, 1)])
def test_frame_repeat_returns_the_nearest_frame_exactly(scene, t, expected):
    frames = scene.frame(0, 0), scene.frame(SHIFT, 0)
    out = FrameRepeat().interpolate(*frames, t=t)
    assert torch.equal(out, frames[expected]) and out is not frames[expected]


def test_t_defaults_to_the_midpoint(scene):
    frame0, frame1 = scene.frame(0, 0), scene.frame(SHIFT, 0)
    for method in (LinearBlend(), FrameRepeat(), DISFlow()):
        assert isinstance(method, Interpolator)
        assert torch.equal(method.interpolate(frame0, frame1), method.interpolate(frame0, frame1, t=0.5))


def test_bad_inputs_are_named(scene):
    frame = scene.frame(0, 0)
    for method in (LinearBlend(), FrameRepeat(), DISFlow()):
        with pytest.raises(InputError, match="outside"):
            method.interpolate(frame, frame, t=1.5)
        with pytest.raises(InputError, match="frames of one size"):
            method.interpolate(frame, frame[:, :64], t=0.5)
    with pytest.raises(InputError, match="eps"):
        DISFlow(eps=0.0)


def _score_fixture_triplets(fixtures_dir, vfi_expected, method_name):
    """(triplet record, PSNR amt, SSIM matlab3d) of a registered method through the benchmark's task module."""
    method = build_method(registry().method(method_name))
    task = FrameInterpolation()
    for triplet in vfi_expected["metric_fixture"]["triplets"]:
        folder = fixtures_dir / "vfi" / triplet["name"]
        sample = Triplet(f"{triplet['name']}/gt", folder / "i0.png", folder / "gt.png", folder / "i1.png")
        pred = task.predict(method, sample)
        gt = next(g for rec, _, g in vfi_triplet_cases(fixtures_dir, vfi_expected, "i0_vs_gt")
                  if rec["name"] == triplet["name"])
        yield triplet, psnr_amt(pred, gt), ssim_matlab3d(pred, gt)


@pytest.mark.parametrize("method_name,entry", [("frame_repeat", "i0_vs_gt"),
                                               ("linear_blend", "pred_float_unrounded_vs_gt")])
def test_registered_floors_reproduce_the_fixture_entries(fixtures_dir, vfi_expected, method_name, entry):
    tol = vfi_expected["suggested_tolerances"]
    for triplet, psnr, ssim in _score_fixture_triplets(fixtures_dir, vfi_expected, method_name):
        assert psnr == pytest.approx(triplet[entry]["psnr"], abs=tol["psnr_db_abs"])
        assert ssim == pytest.approx(triplet[entry]["ssim"], abs=tol["ssim_abs"])


def test_dis_flow_beats_the_blend_on_every_fixture_triplet(fixtures_dir, vfi_expected):
    for triplet, psnr, ssim in _score_fixture_triplets(fixtures_dir, vfi_expected, "dis_flow"):
        blend = triplet["pred_float_unrounded_vs_gt"]
        assert psnr > blend["psnr"] + 3.0 and ssim > blend["ssim"] + 0.05, (triplet["name"], psnr, ssim)
