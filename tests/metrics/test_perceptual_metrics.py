"""LPIPS, region LPIPS and DISTS against the PyPI reference implementations (``lpips`` 0.1.4,
``DISTS-pytorch`` 0.1) on the same weights, plus hand-computed known answers.

The torchvision ImageNet trunks cannot be downloaded here, so both sides get the same trunk built by the
weights rule (``triptych/weights_rule.py``, seed 0, gain 1); the heads (LPIPS v0.1, DISTS alpha/beta)
are the real files of the wheels, found through the weights manager.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from triptych import weights
from triptych.errors import InputError
from triptych.weights_rule import rule_state_dict

torch.set_num_threads(1)
lpips_ref = pytest.importorskip("lpips")

# float32 networks computing the same operations in the same order agree to a few float32 ulps; measured
# differences are <= 2e-7 (LPIPS values ~0.1, maps ~1); 1e-6 leaves room for other BLAS builds.
ABS = 1e-6
SIZE = (64, 80)  # H, W: small enough for VGG16 on one CPU thread


class _Features(nn.Module):
    """Only the ``features`` of a torchvision classifier: its state-dict keys are ``features.*``, as in
    the ImageNet files, without building (and rule-filling) the 100M-parameter classifier heads."""

    def __init__(self, builder: str) -> None:
        super().__init__()
        self.features = getattr(torchvision.models, builder)(weights=None).features


@pytest.fixture(scope="module")
def backbones() -> dict[str, dict[str, torch.Tensor]]:
    return {net: rule_state_dict(_Features(builder), 0, 1.0) for net, builder in (("alex", "alexnet"),
                                                                                  ("vgg", "vgg16"))}


def _reference_lpips(net: str, backbone: dict[str, torch.Tensor], spatial: bool = False):
    ref = lpips_ref.LPIPS(net=net, pnet_rand=True, spatial=spatial, verbose=False)
    slices = [ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5]
    state = {}
    for key, value in backbone.items():
        index, rest = key.split(".", 2)[1:]
        owner = next(i for i, s in enumerate(slices, 1) if index in s._modules)
        state[f"slice{owner}.{index}.{rest}"] = value
    ref.net.load_state_dict(state, strict=True)
    return ref


def _images(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 61, a.shape), 0, 255).astype(np.uint8)
    return a, b


def _network(net: str, backbones):
    from triptych.metrics.perceptual import TRUNKS, LpipsNet

    return LpipsNet(net, backbones[net], weights.load(TRUNKS[net].head_weights))


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_equals_the_lpips_package_on_the_same_weights(net, backbones):
    from triptych.metrics.perceptual import lpips_map, lpips_value

    mine = _network(net, backbones)
    ref, ref_spatial = _reference_lpips(net, backbones[net]), _reference_lpips(net, backbones[net], spatial=True)
    for seed in (0, 1):
        a, b = _images(seed)
        t0, t1 = lpips_ref.im2tensor(a), lpips_ref.im2tensor(b)  # uint8 -> x / 127.5 - 1
        with torch.no_grad():
            want, want_map = ref(t0, t1).item(), ref_spatial(t0, t1)[0, 0].numpy()
        assert want > 0.01
        assert lpips_value(mine, b, a) == pytest.approx(want, abs=ABS)
        np.testing.assert_allclose(lpips_map(mine, b, a), want_map, atol=ABS, rtol=0)
        # float [0, 1] input is 2x - 1 (lpips normalize=True)
        fa, fb = a.astype(np.float32) / 255, b.astype(np.float32) / 255
        with torch.no_grad():
            want_f = ref(torch.from_numpy(fa.transpose(2, 0, 1))[None], torch.from_numpy(fb.transpose(2, 0, 1))[None],
                         normalize=True).item()
        assert lpips_value(mine, fb, fa) == pytest.approx(want_f, abs=ABS)


def test_lpips_known_answers(backbones):
    from triptych.metrics.perceptual import LpipsNet, TRUNKS, lpips_map, lpips_value

    a, b = _images(2)
    net = _network("alex", backbones)
    assert lpips_value(net, a, a) == 0.0  # identical images: every normalised difference is exactly 0
    # heads are linear: doubling every head doubles the distance (by hand: sum_l mean(2 w_l . d_l) = 2 x)
    heads = {k: 2 * v for k, v in weights.load(TRUNKS["alex"].head_weights).items()}
    doubled = LpipsNet("alex", backbones["alex"], heads)
    assert lpips_value(doubled, a, b) == pytest.approx(2 * lpips_value(net, a, b), rel=1e-6)
    # the v0.1 heads are >= 0, so the spatial map is >= 0 everywhere
    assert lpips_map(net, a, b).min() >= 0.0


def test_region_lpips_partitions_the_spatial_map_and_devil_composites(backbones):
    from triptych.metrics import perceptual

    net = _network("alex", backbones)
    a, b = _images(3)
    hole = np.zeros(SIZE, np.uint8)
    hole[10:40, 20:50] = 255
    full = perceptual.lpips_map(net, b, a)
    h_val = perceptual.lpips_region_value(net, b, a, hole, "hole")
    v_val = perceptual.lpips_region_value(net, b, a, hole, "valid")
    n_hole = int((hole > 0).sum())
    # by hand: hole mean x |hole| + valid mean x |valid| = the map's sum
    assert h_val * n_hole + v_val * (hole.size - n_hole) == pytest.approx(full.sum(), rel=1e-9)
    assert h_val == pytest.approx(full[10:40, 20:50].mean(), rel=1e-12)
    with pytest.raises(InputError, match="hole region is empty"):
        perceptual.lpips_region_value(net, b, a, np.zeros(SIZE, np.uint8), "hole")
    # DEVIL composites the prediction (lpips_devil = lpips_value of the composite): a prediction equal to
    # gt inside the hole scores exactly 0, however wrong it is outside
    wrong_outside = np.where(hole[..., None] > 0, a, b)
    assert perceptual.lpips_value(net, perceptual.composite(wrong_outside, a, hole), a) == 0.0
    comp = perceptual.composite(b, a, hole)
    assert (comp[10:40, 20:50] == b[10:40, 20:50]).all() and (comp[:10] == a[:10]).all()


def test_missing_trunk_is_the_weights_managers_error(tmp_path, monkeypatch, run_cli):
    from triptych.metrics import perceptual

    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    perceptual.lpips_network.cache_clear()
    a, b = _images(4)
    with pytest.raises(weights.MissingWeightsError, match="alexnet-owt-7be5be79.pth") as info:
        perceptual.lpips(a, b, net="alex")
    assert "triptych weights import lpips_backbone_alex" in str(info.value)
    from PIL import Image

    Image.fromarray(a).save(tmp_path / "gt.png")
    Image.fromarray(b).save(tmp_path / "pred.png")
    code, _, err = run_cli("measure", "dists", "--pred", tmp_path / "pred.png", "--gt", tmp_path / "gt.png")
    assert code != 0 and "vgg16-397923af.pth" in err
    perceptual.lpips_network.cache_clear()


def test_dists_equals_dists_pytorch_on_the_same_weights(backbones, tmp_path, monkeypatch):
    from triptych.metrics.dists import DistsNet, dists_value

    # DISTS_pytorch builds torchvision's vgg16(pretrained=True): it finds the rule trunk in the hub cache
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    full = torchvision.models.vgg16(weights=None).state_dict()  # the classifier is unused by DISTS
    full.update(backbones["vgg"])
    torch.save(full, checkpoints / "vgg16-397923af.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    dists_ref = pytest.importorskip("DISTS_pytorch")
    ref = dists_ref.DISTS()
    mine = DistsNet(backbones["vgg"], weights.load("dists_alpha_beta"))
    for seed in (5, 6):
        a, b = _images(seed)
        x = torch.from_numpy(a.astype(np.float32).transpose(2, 0, 1)[None] / 255)
        y = torch.from_numpy(b.astype(np.float32).transpose(2, 0, 1)[None] / 255)
        want = ref(x, y).item()
        assert want > 1e-3
        assert dists_value(mine, b, a) == pytest.approx(want, abs=ABS)
    assert dists_value(mine, a, a) == pytest.approx(0.0, abs=ABS)


def test_dists_known_answer_on_flat_images(backbones):
    """alpha only on the 3 input channels, beta 0: DISTS = 1 - mean_c S1_c of the raw images. Flat images
    0.2 and 0.6: S1 = (2 * 0.2 * 0.6 + 1e-6) / (0.04 + 0.36 + 1e-6) = 0.240001 / 0.400001, by hand."""
    from triptych.metrics.dists import DistsNet, dists_value

    alpha = torch.zeros(1, 1475, 1, 1)
    alpha[:, :3] = 7.0
    net = DistsNet(backbones["vgg"], {"alpha": alpha, "beta": torch.zeros(1, 1475, 1, 1)})
    x = np.full((*SIZE, 3), 0.2, np.float32)
    y = np.full((*SIZE, 3), 0.6, np.float32)
    assert dists_value(net, y, x) == pytest.approx(1 - 0.240001 / 0.400001, abs=1e-6)


def test_lpips_devil_equals_devils_lpips_call(backbones):
    """DEVIL @ d339a12 lpips_computer.py: ``lpips.LPIPS(net='alex')(gt, comp)`` on ``uint8 / 255`` float32
    frames mapped by ``2x - 1``, ``comp`` = get_comp_frame (the prediction inside the hole); same trunk on
    both sides (the released trunk is ImageNet's, not random, since that commit)."""
    from triptych.metrics import perceptual

    ref = _reference_lpips("alex", backbones["alex"])
    mine = _network("alex", backbones)
    a, b = _images(7)
    hole = np.zeros(SIZE, np.uint8)
    hole[5:50, 10:60] = 255
    comp = np.where(hole[..., None] > 0, b, a)  # DEVIL: C = M * G + (1 - M) * P, M = 1 on known pixels
    devil_in = lambda im: torch.from_numpy(im.astype(np.float32).transpose(2, 0, 1)[None] / 255) * 2.0 - 1  # noqa: E731
    with torch.no_grad():
        want = ref(devil_in(a), devil_in(comp)).item()
    assert want > 0.01
    assert perceptual.lpips_value(mine, perceptual.composite(b, a, hole), a) == pytest.approx(want, abs=ABS)
