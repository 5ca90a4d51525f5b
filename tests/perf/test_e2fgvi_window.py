"""CPU time of one E2FGVI / E2FGVI-HQ window at 432x240 (marked slow; pytest-benchmark).

The window is the model_ports fixture's: 11 local frames and 1 reference frame, rule weights, float32,
``torch.no_grad()``. One round each (a window takes about half a minute on one core). Printed: process CPU
seconds, wall seconds and the HQ / E2FGVI ratio measured in the same run. The fixture README gives the
reference implementation's time on its machine (32.8 s for E2FGVI, 34.08 s for HQ, 1 thread, no hooks).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from triptych.baselines.e2fgvi import E2FGVI
from triptych.baselines.video_window import to_model_input
from triptych.weights_rule import apply_weights_rule

pytestmark = pytest.mark.slow
SECONDS: dict[str, float] = {}


@pytest.mark.parametrize("name", ("e2fgvi", "e2fgvi_hq"))
def test_one_window_at_432x240_on_cpu(benchmark, fixtures_dir, name):
    expected = json.loads((fixtures_dir / f"model_ports/{name}/expected.json").read_text())
    model = E2FGVI(name == "e2fgvi_hq")
    apply_weights_rule(model, expected["weights"]["seed"], expected["weights"]["gain"])
    model.eval()
    data = np.load(fixtures_dir / "model_ports/e2fgvi/inputs_u8.npz")
    x, m = to_model_input(data["frames"], (data["masks"] // 255).astype(np.uint8))
    masked, num_local = x * (1 - m), int(data["num_local_frames"])

    def window() -> torch.Tensor:
        with torch.no_grad():
            return model(masked, num_local)[0]

    start_cpu, start_wall = time.process_time(), time.perf_counter()
    out = benchmark.pedantic(window, rounds=1, iterations=1)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    SECONDS[name] = cpu
    print(f"\n{name}: one window (12 frames, 432x240) {cpu:.2f} s CPU, {wall:.2f} s wall, "
          f"{torch.get_num_threads()} thread(s)")
    if len(SECONDS) == 2:
        print(f"HQ / E2FGVI CPU time ratio: {SECONDS['e2fgvi_hq'] / SECONDS['e2fgvi']:.3f}")
    assert list(out.shape) == expected["outputs"]["pred_imgs.npy"]["shape"] and torch.isfinite(out).all()
