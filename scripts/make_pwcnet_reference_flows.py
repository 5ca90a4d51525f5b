"""Write ``tests/data/pwcnet_reference_flows.npz``: flows computed by the reference's own PWC-Net code on fixed
inputs, the known answer of ``tests/metrics/test_pwcnet.py``.

Usage: ``python scripts/make_pwcnet_reference_flows.py FLOLPIPS_CHECKOUT`` with a checkout of danier97/flolpips
@ 26ea00f (its ``pwcnet.py`` is byte-for-byte the network of VFIBenchmark @ 40a05ec
``metrics/flolpips/pwcnet.py``). The reference runs unmodified except for what a CPU without cupy needs:

- its ``correlation`` package (a cupy CUDA kernel) is replaced by the module ``correlation_standin`` below, an
  ``unfold`` formulation checked here against a naive loop before use;
- ``.cuda()`` calls are made no-ops (``torch.Tensor.cuda`` returns the tensor itself);
- ``torch.hub.load_state_dict_from_url`` returns the weights-rule state dict (``triptych/weights_rule.py``,
  seed 7, gain 1) under the keys listed in ``tests/data/pwcnet_default_keys.json``, the released file's key
  names, which the reference renames (``module`` -> ``net``) as it does with the real file.

Inputs (rebuilt by the test from the same seed): ``frames(seed)`` below, uint8 RGB / 255, as
``TF.to_tensor`` feeds the reference in ``calc_flolpips``.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
SIZES = ((70, 100, 3), (90, 120, 5))  # (height, width, horizontal shift of the second frame)
SEED, GAIN = 7, 1.0


def frames(height: int, width: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Two uint8 RGB frames: a random texture and the same texture shifted ``shift`` px left."""
    base = np.random.default_rng(height * 1000 + width).integers(0, 256, (height, width + shift, 3), dtype=np.uint8)
    return np.ascontiguousarray(base[:, :width]), np.ascontiguousarray(base[:, shift:shift + width])


def correlation_standin(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The cupy kernel's output: 81 channels ``(dy + 4) * 9 + dx + 4``, mean over channels, zero padding."""
    n, c, h, w = first.shape
    columns = F.unfold(F.pad(second, (4, 4, 4, 4)), kernel_size=9).view(n, c, 81, h, w)
    return (columns * first[:, :, None]).sum(dim=1) / c


def _check_standin() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 1, 3, 5, 6))
    got = correlation_standin(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    for dy in range(-4, 5):
        for dx in range(-4, 5):
            for y in range(5):
                for x in range(6):
                    inside = 0 <= y + dy < 5 and 0 <= x + dx < 6
                    want = (a[0, :, y, x] * b[0, :, y + dy, x + dx]).mean() if inside else 0.0
                    assert abs(got[0, (dy + 4) * 9 + dx + 4, y, x] - want) < 1e-12


def main(checkout: Path) -> None:
    from triptych.weights_rule import rule_tensor

    _check_standin()
    keys = json.loads((REPO / "tests/data/pwcnet_default_keys.json").read_text())["keys"]
    state = {key: torch.from_numpy(rule_tensor(key, tuple(shape), SEED, GAIN)) for key, shape in keys}
    package = types.ModuleType("correlation")
    package.correlation = types.SimpleNamespace(  # type: ignore[attr-defined]
        FunctionCorrelation=lambda tenFirst, tenSecond: correlation_standin(tenFirst, tenSecond))
    sys.modules["correlation"] = package
    torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    torch.hub.load_state_dict_from_url = lambda *args, **kwargs: state  # type: ignore[assignment]
    sys.path.insert(0, str(checkout))
    from pwcnet import Network  # the reference's file

    network = Network().eval()
    out = {}
    for height, width, shift in SIZES:
        a, b = (torch.from_numpy(f).permute(2, 0, 1)[None].float() / 255.0 for f in frames(height, width, shift))
        with torch.no_grad():
            out[f"flow_{height}x{width}"] = network(a, b)[0].permute(1, 2, 0).numpy().astype(np.float32)
    target = REPO / "tests/data/pwcnet_reference_flows.npz"
    np.savez_compressed(target, **out)
    print(f"wrote {target}: " + ", ".join(f"{k} max |flow| {np.abs(v).max():.3f}" for k, v in out.items()))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
