"""``triptych measure --weights FILE`` on metrics with a network (issue 22, item 3): the user's trunk stands
in for the registry's, the value is the peer package's on that trunk, the file is recorded with its sha256
as user-supplied, and the rows' variant is ``VARIANT+user-<sha8>``, which pairs with no published row.

The trunks are weights-rule files (``triptych/weights_rule.py``): torchvision cannot download the ImageNet
trunks here, and a user's fine-tuned trunk is just another file of the same layout."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from triptych.weights_rule import rule_state_dict

torch.set_num_threads(1)
SIZE = (64, 80)


class _Features(nn.Module):
    def __init__(self, builder: str) -> None:
        super().__init__()
        self.features = getattr(torchvision.models, builder)(weights=None).features


def _trunk_file(tmp_path, builder: str, seed: int = 3):
    state = rule_state_dict(_Features(builder), seed, 1.0)
    path = tmp_path / f"{builder}_finetuned.pth"
    torch.save(state, path)
    return path, state, hashlib.sha256(path.read_bytes()).hexdigest()


def _pair_files(tmp_path, seed: int = 0):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-60, 61, gt.shape), 0, 255).astype(np.uint8)
    Image.fromarray(gt).save(tmp_path / "gt.png")
    Image.fromarray(pred).save(tmp_path / "pred.png")
    return pred, gt


def _measure(run_cli, tmp_path, metric, variant, weights, *extra):
    code, out, err = run_cli("measure", metric, "--variant", variant, "--pred", tmp_path / "pred.png", "--gt",
                             tmp_path / "gt.png", "--weights", weights, "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_lpips_with_a_user_trunk_is_the_lpips_package_on_it_and_never_pairs(tmp_path, run_cli):
    lpips_ref = pytest.importorskip("lpips")
    path, state, sha = _trunk_file(tmp_path, "alexnet")
    pred, gt = _pair_files(tmp_path)
    ref = lpips_ref.LPIPS(net="alex", pnet_rand=True, verbose=False)
    slices = [ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5]
    mapped = {}
    for key, value in state.items():
        index, rest = key.split(".", 2)[1:]
        owner = next(i for i, s in enumerate(slices, 1) if index in s._modules)
        mapped[f"slice{owner}.{index}.{rest}"] = value
    ref.net.load_state_dict(mapped, strict=True)
    with torch.no_grad():
        want = ref(lpips_ref.im2tensor(pred), lpips_ref.im2tensor(gt)).item()
    doc = _measure(run_cli, tmp_path, "lpips", "alex", path, "--out", tmp_path / "runs")
    assert doc["aggregate"]["value"] == pytest.approx(want, abs=1e-6) and want > 0.01
    assert doc["metric_variant"] == f"alex+user-{sha[:8]}"
    user, heads = doc["weights"]
    assert (user["sha256"], user["user_supplied"], user["registered"], user["replaces"]) == (
        sha, True, False, "lpips_backbone_alex")
    assert heads["name"] == "lpips_lin_alex_v0_1" and heads["registered"] is True
    # the written run's rows carry the suffixed variant, which no published row or registry variant has
    from triptych.registry import registry

    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = pd.read_parquet(next(run_dir.rglob("*.parquet")))
    assert set(rows["metric_variant"]) == {f"alex+user-{sha[:8]}"}
    assert f"alex+user-{sha[:8]}" not in registry().metric("lpips").variants


def test_dists_with_a_user_trunk_is_dists_pytorch_on_it(tmp_path, run_cli, monkeypatch):
    path, state, sha = _trunk_file(tmp_path, "vgg16")
    pred, gt = _pair_files(tmp_path, seed=1)
    checkpoints = tmp_path / "hub" / "checkpoints"  # DISTS_pytorch builds vgg16(pretrained=True) from here
    checkpoints.mkdir(parents=True)
    full = torchvision.models.vgg16(weights=None).state_dict()
    full.update(state)
    torch.save(full, checkpoints / "vgg16-397923af.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    dists_ref = pytest.importorskip("DISTS_pytorch")
    to = lambda im: torch.from_numpy(im.astype(np.float32).transpose(2, 0, 1)[None] / 255)  # noqa: E731
    with torch.no_grad():
        want = dists_ref.DISTS()(to(pred), to(gt)).item()
    doc = _measure(run_cli, tmp_path, "dists", "ding2020", path)
    assert doc["aggregate"]["value"] == pytest.approx(want, abs=1e-6) and want > 1e-3
    assert doc["metric_variant"] == f"ding2020+user-{sha[:8]}"
    assert doc["weights"][0]["replaces"] == "lpips_backbone_vgg16" and doc["weights"][1]["name"] == "dists_alpha_beta"


def test_fid_with_a_user_inception(tmp_path, run_cli):
    from triptych.metrics import fid

    model = fid.FidInception()
    state = rule_state_dict(model.net, 5, 1.0)
    path = tmp_path / "inception_finetuned.pth"
    torch.save(state, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    rng = np.random.default_rng(2)
    for side in ("real", "gen"):
        (tmp_path / side).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / side / f"{i}.png")
    code, out, err = run_cli("measure", "fid", "--variant", "clean", "--pred", tmp_path / "gen", "--gt",
                             tmp_path / "real", "--weights", path, "--json")
    assert code == 0, err
    doc = json.loads(out)
    model.net.load_state_dict(state, strict=True)
    want = fid.fid_clean(sorted((tmp_path / "real").iterdir()), sorted((tmp_path / "gen").iterdir()),
                         network=fid.FidNetwork(model.eval(), {}))
    assert doc["aggregate"]["value"] == pytest.approx(want.value, rel=1e-9)
    assert doc["metric_variant"] == f"clean+user-{sha[:8]}"
    assert doc["weights"][0]["sha256"] == sha and doc["weights"][0]["replaces"] == "inception_fid"


def test_weights_import_user_accepts_an_own_trunk_for_a_pinned_entry(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    path, _, sha = _trunk_file(tmp_path, "alexnet", seed=4)
    _pair_files(tmp_path, seed=3)
    code, _, err = run_cli("weights", "import", "lpips_backbone_alex", path)  # not the published file: refused
    assert code == 2 and "--user" in err and "VARIANT+user-<sha8>" in err
    code, out, err = run_cli("weights", "import", "lpips_backbone_alex", path, "--user")
    assert code == 0, err
    kind, name, digest, stored = out.strip().split("\t")
    assert (kind, name, digest) == ("user", "lpips_backbone_alex", f"sha256 {sha}")
    assert stored.startswith(str(tmp_path / "home")) and f"user-{sha[:8]}" in err
    doc = _measure(run_cli, tmp_path, "lpips", "alex", stored)
    assert doc["metric_variant"] == f"alex+user-{sha[:8]}" and doc["weights"][0]["sha256"] == sha
    code, _, err = run_cli("weights", "import", "lpips_backbone_alex", tmp_path / "gt.png", "--user")
    assert code == 2 and "gt.png" in err  # not a state dict


def test_frame_fid_devil_is_pytorch_fids_inceptionv3_on_every_frame(tmp_path, run_cli, monkeypatch):
    """DEVIL's frame FID: pytorch-fid's own ``InceptionV3([3])`` (resize_input: bilinear 299, normalize_input)
    on ``uint8 / 255`` frames of every video, features pooled over videos; same Inception file on both sides
    (pytorch-fid reads it from the torch hub cache). The distance is the Fréchet core checked against scipy
    in test_personalization_metrics.py."""
    from pytorch_fid.inception import FID_WEIGHTS_URL, InceptionV3

    from triptych.metrics import fid
    from triptych.metrics.frechet import frechet_distance

    model = fid.FidInception()
    state = rule_state_dict(model.net, 6, 1.0)
    path = tmp_path / "inception.pth"
    torch.save(state, path)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(state, checkpoints / FID_WEIGHTS_URL.rsplit("/", 1)[1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = InceptionV3([3]).eval()  # resize_input=True, normalize_input=True: DEVIL's call
    rng = np.random.default_rng(7)
    feats = {"gt": [], "pred": []}
    for side in feats:
        for video in ("a", "b"):
            (tmp_path / side / video).mkdir(parents=True)
            for t in range(2):
                frame = rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)
                Image.fromarray(frame).save(tmp_path / side / video / f"{t:05d}.png")
                x = torch.from_numpy(frame.astype(np.float32).transpose(2, 0, 1)[None] / 255)
                with torch.no_grad():
                    feats[side].append(reference(x)[0].flatten().numpy())
    want = frechet_distance(np.stack(feats["gt"]), np.stack(feats["pred"]), with_reference=False).value
    code, out, err = run_cli("measure", "frame_fid", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt",
                             "--weights", path, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["aggregate"]["value"] == pytest.approx(want, rel=1e-4) and want > 0
    assert doc["extras"]["n_generated"] == doc["extras"]["n_real"] == 4
    assert doc["metric_variant"].startswith("devil+user-")


@pytest.mark.parametrize("metric", ["vfid", "face_div"])
def test_a_user_trunk_row_never_pairs_with_the_published_row(metric):
    """The leaderboard's pairing (leaderboard/sitedata.py pair_with): a reproduced row of an eligible run
    pairs with the published row of its (benchmark, split, metric, variant); the same row with a user
    trunk's ``+user-<sha8>`` variant finds no published row."""
    from triptych.leaderboard.reported import load_reported
    from triptych.leaderboard.sitedata import pair_with
    from triptych.published import Pairing

    reported = load_reported()
    rep = reported[reported["metric"] == metric].iloc[0]
    row = {"benchmark": rep["benchmark"], "split": rep["split"], "metric": metric,
           "metric_variant": rep["metric_variant"], "benchmark_variant": "",
           "pairing": Pairing(rep["method"], {str(rep["table"]): ""})}
    index, reason = pair_with(pd.Series(row), reported)
    assert index is not None and reason == ""
    user = pd.Series({**row, "metric_variant": f"{rep['metric_variant']}+user-1a2b3c4d"})
    index, reason = pair_with(user, reported)
    assert index is None and f"{metric}:{rep['metric_variant']}+user-1a2b3c4d" in reason
