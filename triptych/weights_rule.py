"""The deterministic weights rule of the model fixtures (``docs/weights_rule.md``), written once.

The golden fixtures of I3D, E2FGVI / E2FGVI-HQ, AMT-L / AMT-G and the PhotoMaker ID encoder store no
weights: their outputs were made with weights built from each state-dict key by this rule. A port
rebuilds them with ``apply_weights_rule(model, seed, gain)`` and checks ``state_sha256`` against the
fixture before comparing outputs. It is also a convenient way to give any port reproducible weights.
"""

from __future__ import annotations

import hashlib
import math
import zlib

import numpy as np
import torch


def _center(key: str) -> float:
    """1-D weights: 1.0 under a norm layer (its name contains ``norm`` or equals ``bn``), else 0.25."""
    parts = key.split(".")
    owner = parts[-2] if len(parts) >= 2 else ""
    return 1.0 if ("norm" in owner or owner == "bn") else 0.25


def rule_tensor(key: str, shape: tuple[int, ...], seed: int, gain: float) -> np.ndarray:
    """The float32 value of parameter ``key``: its own PCG64 generator seeded with crc32("SEED:key"),
    every draw and every operation in float64, cast once to float32."""
    rng = np.random.default_rng(zlib.crc32(f"{seed}:{key}".encode("utf-8")))
    if key.rsplit(".", 1)[-1] == "bias":
        value = rng.uniform(-0.1, 0.1, size=shape)
    elif len(shape) == 1:
        value = _center(key) + rng.uniform(-0.1, 0.1, size=shape)
    else:
        fan_in = math.prod(shape[1:])
        value = rng.standard_normal(size=shape) * (gain * math.sqrt(1.0 / fan_in))
    return np.asarray(value, dtype=np.float64).astype(np.float32)


def rule_state_dict(model: torch.nn.Module, seed: int, gain: float) -> dict[str, torch.Tensor]:
    """The rule's state dict for ``model``, in ``model.state_dict()`` order.

    Integer tensors (``num_batches_tracked`` -> 0; other integer buffers keep their constructed values),
    ``running_var`` -> ones, ``running_mean`` -> zeros, other float buffers keep their constructed values,
    every parameter follows ``rule_tensor``.
    """
    parameters = {name for name, _ in model.named_parameters()}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        if not tensor.is_floating_point():
            out[key] = torch.zeros_like(tensor) if key.endswith("num_batches_tracked") else tensor.clone()
        elif key.endswith("running_var"):
            out[key] = torch.ones_like(tensor)
        elif key.endswith("running_mean"):
            out[key] = torch.zeros_like(tensor)
        elif key not in parameters:
            out[key] = tensor.clone()
        else:
            out[key] = torch.from_numpy(rule_tensor(key, tuple(tensor.shape), seed, gain))
    return out


def apply_weights_rule(model: torch.nn.Module, seed: int, gain: float) -> str:
    """Load the rule's weights strictly into ``model``; returns the state hash taken right after loading."""
    model.load_state_dict(rule_state_dict(model, seed, gain), strict=True)
    return state_sha256(model.state_dict())


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over every entry in order: the key (utf-8), then the tensor's bytes (C order, little-endian,
    its own dtype). Take it before any train-mode forward pass, which updates BatchNorm statistics."""
    digest = hashlib.sha256()
    for key, tensor in state.items():
        digest.update(key.encode("utf-8"))
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(order="C"))
    return digest.hexdigest()
