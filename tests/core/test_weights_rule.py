"""The one deterministic weights rule of the model fixtures, checked against fixture hashes and per-key checks."""

from __future__ import annotations

import json

import pytest
import torch

from triptych.weights_rule import apply_weights_rule, rule_tensor, state_sha256


@pytest.mark.parametrize("model", ["amt_l", "amt_g"])
def test_rule_rebuilds_the_amt_fixture_weights_from_the_key_list(fixtures_dir, model):
    """AMT-L/G have parameters only, so the key list alone defines the state (no model code needed)."""
    expected = json.loads((fixtures_dir / f"model_ports/{model}/expected.json").read_text())
    keys = json.loads((fixtures_dir / f"vfi/{model}_keys.json").read_text())["keys"]
    seed, gain = expected["weights"]["seed"], expected["weights"]["gain"]
    state = {e["key"]: torch.from_numpy(rule_tensor(e["key"], tuple(e["shape"]), seed, gain)) for e in keys}
    assert state_sha256(state) == expected["weights"]["state_sha256"]
    for key, check in expected["weight_checks"].items():
        assert state[key].flatten()[0].item() == check["first"], key
        assert state[key].double().sum().item() == pytest.approx(check["sum_float64"], rel=1e-12, abs=1e-12), key


def test_buffers_follow_the_rule():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    model.register_buffer("fixed", torch.full((2,), 7.0))
    apply_weights_rule(model, seed=1, gain=1.0)
    state = model.state_dict()
    assert torch.equal(state["1.running_var"], torch.ones(4)) and torch.equal(state["1.running_mean"], torch.zeros(4))
    assert state["1.num_batches_tracked"].item() == 0 and torch.equal(state["fixed"], torch.full((2,), 7.0))
    # the BatchNorm weight of a module named by index is not a norm by name: centre 0.25
    assert state["1.weight"].sub(0.25).abs().max() <= 0.1
    norm = rule_tensor("block.bn.weight", (8,), 1, 1.0)
    assert abs(norm - 1.0).max() <= 0.1
