"""The authors' E2FGVI and AMT models, imported from local checkouts named by environment variables, for the
same-run speed ratios of tests/perf/test_model_speed.py (docs/performance.md).

- ``TRIPTYCH_E2FGVI_REPO``: a checkout of MCG-NKU/E2FGVI (``model/e2fgvi.py``, ``model/e2fgvi_hq.py``);
- ``TRIPTYCH_AMT_REPO``: a checkout of MCG-NKU/AMT (``networks/AMT-L.py``, ``networks/AMT-G.py``).

Nothing of the authors' code is part of this repository. E2FGVI imports mmcv 1.x for three things; where mmcv
is not installed, a stand-in is registered that does what docs/protocols/video_completion.md says the golden
fixtures' reference run used: ``modulated_deform_conv2d`` is ``torchvision.ops.deform_conv2d`` (the same DCNv2
operator and offset layout), ``ConvModule`` a biased conv plus optional ReLU, ``load_checkpoint`` does nothing
(the rule weights overwrite every parameter). The models get the state dict of the port, whose keys equal the
authors' (tests/test_e2fgvi_port.py, tests/test_amt_port.py).
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.ops import deform_conv2d


def checkout(variable: str, marker: str) -> Path:
    """The folder ``$variable`` names, holding ``marker``; skips the test with the fix when it is unset."""
    value = os.environ.get(variable)
    if not value:
        pytest.skip(f"{variable} is not set: the authors' model is the reference of this ratio; set it to a "
                    f"checkout of the authors' repository (docs/performance.md)")
    root = Path(value).expanduser()
    if not (root / marker).is_file():
        raise FileNotFoundError(f"{variable}={value}: no {marker} there; point it to the repository's root")
    return root


class _ModulatedDeformConv2d(nn.Module):
    """mmcv's parameter layout (``weight`` [out, in/groups, k, k], ``bias`` [out]) and attributes."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, deform_groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups, self.deform_groups = groups, deform_groups
        self.weight = nn.Parameter(torch.zeros(out_channels, in_channels // groups, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None


def _modulated_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation, groups, deform_groups):
    return deform_conv2d(x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask)


class _ConvModule(nn.Module):
    """mmcv ``ConvModule`` as SPyNet configures it (no norm; ReLU or nothing)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        self.activate = nn.ReLU(inplace=True) if act_cfg else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.activate(x) if self.activate is not None else x


def _constant_init(module: nn.Module, val: float, bias: float = 0) -> None:
    nn.init.constant_(module.weight, val)
    nn.init.constant_(module.bias, bias)


def _mmcv_stand_in() -> None:
    """Register ``mmcv.ops`` / ``mmcv.cnn`` / ``mmcv.runner`` stand-ins unless mmcv is importable."""
    try:
        importlib.import_module("mmcv.ops")
        return
    except ImportError:
        pass
    parts = {"ops": {"ModulatedDeformConv2d": _ModulatedDeformConv2d,
                     "modulated_deform_conv2d": _modulated_deform_conv2d},
             "cnn": {"ConvModule": _ConvModule, "constant_init": _constant_init},
             "runner": {"load_checkpoint": lambda *args, **kwargs: None}}
    root = types.ModuleType("mmcv")
    sys.modules["mmcv"] = root
    for name, members in parts.items():
        module = types.ModuleType(f"mmcv.{name}")
        module.__dict__.update(members)
        setattr(root, name, module)
        sys.modules[f"mmcv.{name}"] = module


def _import(root: Path, module: str, packages: tuple[str, ...]) -> types.ModuleType:
    """``module`` from the checkout ``root`` (its top-level packages ``packages`` imported from there)."""
    for name in [m for m in sys.modules if m.split(".")[0] in packages]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(root))


def authors_e2fgvi(port: nn.Module) -> nn.Module:
    """The authors' ``InpaintGenerator`` (HQ when ``port.hq``) with the port's weights, eval mode."""
    root = checkout("TRIPTYCH_E2FGVI_REPO", "model/e2fgvi.py")
    _mmcv_stand_in()
    model = _import(root, "model.e2fgvi_hq" if port.hq else "model.e2fgvi", ("model",)).InpaintGenerator()
    model.load_state_dict(port.state_dict(), strict=True)
    return model.eval()


def authors_amt(port: nn.Module, variant: str) -> nn.Module:
    """The authors' AMT-L / AMT-G ``Model`` (cfgs: ``corr_radius=3, corr_lvls=4, num_flows=5``) with the port's
    weights, eval mode."""
    root = checkout("TRIPTYCH_AMT_REPO", f"networks/AMT-{variant}.py")
    model = _import(root, f"networks.AMT-{variant}", ("networks", "utils")).Model(corr_radius=3, corr_lvls=4,
                                                                                   num_flows=5)
    model.load_state_dict(port.state_dict(), strict=True)
    return model.eval()
