"""Speed of every metric variant on 432x240 frames, written to ``docs/metric_speed.json`` (marked slow).

``triptych catalogue`` prints these numbers, so the catalogue page is reproducible from a measured file.
Each variant is timed through its registered callable when it needs no weights; the learned metrics whose
pretrained files are not bundled (LPIPS / DISTS trunks) are timed through the same network code with
weights built by the weights rule (the same arithmetic, so the same time). Variants that need inputs or
weights this suite cannot build (VFID's I3D, stored flows, face images) are written as null. Set
``TRIPTYCH_SPEED_OUT`` to write elsewhere.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from conftest import REPO
from triptych import weights
from triptych.registry import registry
from triptych.weights_rule import rule_state_dict

pytestmark = pytest.mark.slow
H, W = 240, 432
RUNS = 3


def _median_ms(fn: Callable[[], Any], per: int = 1) -> float:
    fn()  # warm-up (lazy imports, allocator)
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000 / per)
    return round(statistics.median(times), 2)


class _Features(nn.Module):
    def __init__(self, builder: str) -> None:
        super().__init__()
        self.features = getattr(torchvision.models, builder)(weights=None).features


def _rule_networks() -> dict[str, Any]:
    from triptych.metrics.dists import DistsNet
    from triptych.metrics.perceptual import TRUNKS, LpipsNet, device

    trunks = {net: rule_state_dict(_Features(b), 0, 1.0) for net, b in (("alex", "alexnet"), ("vgg", "vgg16"))}
    nets = {net: LpipsNet(net, trunks[net], weights.load(TRUNKS[net].head_weights)).to(device()) for net in trunks}
    nets["dists"] = DistsNet(trunks["vgg"], weights.load("dists_alpha_beta")).to(device())
    return nets


def _learned_timers(nets: dict[str, Any], pred, gt, mask, video_p, video_g) -> dict[str, Callable[[], Any]]:
    from triptych.metrics import perceptual as p
    from triptych.metrics import temporal as t
    from triptych.metrics.dists import dists_value
    from triptych.vision.flow import dis_flow

    return {
        "lpips:alex": lambda: p.lpips_value(nets["alex"], pred, gt),
        "lpips:vgg": lambda: p.lpips_value(nets["vgg"], pred, gt),
        "dists:ding2020": lambda: dists_value(nets["dists"], pred, gt),
        "lpips_masked:hole": lambda: p.lpips_region_value(nets["alex"], pred, gt, mask, "hole"),
        "lpips_masked:valid": lambda: p.lpips_region_value(nets["alex"], pred, gt, mask, "valid"),
        "lpips_masked:devil": lambda: p.lpips_value(nets["alex"], p.composite(pred, gt, mask), gt),
        "tlp:all-pairs": lambda: t.tlp_values(nets["alex"], video_p, video_g, 0, False),
        "tlp:tecogan": lambda: t.tlp_values(nets["alex"], video_p * 2, video_g * 2, 2, True),
        "flolpips:dis": lambda: t.flolpips_values(nets["alex"], video_p, video_g, dis_flow),
    }


def test_metric_speed_on_432x240_frames():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((H, W), np.uint8)
    mask[80:160, 150:280] = 255
    video_g = [np.ascontiguousarray(np.roll(gt, 2 * k, axis=1)) for k in range(3)]
    video_p = [np.ascontiguousarray(np.roll(pred, 2 * k, axis=1)) for k in range(3)]
    pairs = len(video_g) - 1
    learned = _learned_timers(_rule_networks(), pred, gt, mask, video_p, video_g)
    per_pair = {"tlp:all-pairs": pairs, "tlp:tecogan": 1, "flolpips:dis": pairs}
    results: dict[str, float | None] = {}
    for spec in registry().metrics.values():
        for variant in spec.variants.values():
            key = f"{spec.name}:{variant.name}"
            if key in learned:
                results[key] = _median_ms(learned[key], per_pair.get(key, 1))
                continue
            if variant.weights:
                results[key] = None
                continue
            fn = variant.load()
            params = dict(variant.params)
            if spec.kind == "paired_image":
                results[key] = _median_ms(lambda: fn(pred, gt, **params))
            elif spec.kind == "masked_image":
                results[key] = _median_ms(lambda: fn(pred, gt, mask, **params))
            elif spec.kind == "video_frames" and variant.inputs.mode("masks") != "required":
                results[key] = _median_ms(lambda: fn(video_p, video_g, **params), pairs)
            elif spec.kind == "video_frames":
                results[key] = _median_ms(lambda: fn(video_p, video_g, [mask] * 3, **params), pairs)
            elif spec.kind == "video_flow" and not variant.inputs.takes("flow_dir"):
                if variant.inputs.takes("masks"):  # DEVIL's masked E_warp
                    params["masks"] = [mask] * 3
                results[key] = _median_ms(lambda: fn(video_p, video_g, **params), pairs)
            else:
                results[key] = None
    assert results["psnr:e2fgvi"] is not None and results["lpips:alex"] is not None
    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
              else f"CPU {platform.machine()} ({os.cpu_count()} cores visible, {torch.get_num_threads()} torch threads)")
    doc = {"frame": f"{W}x{H}", "device": device,
           "method": f"median of {RUNS} runs after one warm-up, time.perf_counter, torch {torch.__version__}",
           "ms_per_frame": dict(sorted(results.items()))}
    out = Path(os.environ.get("TRIPTYCH_SPEED_OUT", REPO / "docs/metric_speed.json"))
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(doc, indent=2))
