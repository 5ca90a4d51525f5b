"""Building blocks of AMT (Li et al., "AMT: All-Pairs Multi-Field Transforms for Efficient Frame
Interpolation", CVPR 2023), shared by the S, L and G models of ``triptych.baselines.amt``.

Every fact here was read from MCG-NKU/AMT @ 70f988f (``networks/blocks/feat_enc.py``, ``raft.py``,
``ifrnet.py``, ``multi_flow.py`` and ``utils/flow_utils.py``); the code is written anew. Attribute names
and registration order are part of the checkpoint format: they give the state-dict keys
(``feat_encoder.layer1.0.conv1.weight``, ``decoder4.convblock.1.conv5.bias``, ...), so they follow the
reference exactly. Instance normalisation has no affine parameters and no running statistics, so the
models have parameters only, no buffers.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

UnitKind = Literal["bottleneck", "residual"]


# --- resampling ------------------------------------------------------------------------------------------

def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinear resize by a factor (``align_corners=False``, the factor itself sets the sampling grid):
    the one resize of AMT, used for images, flows, features, masks and correlation maps alike."""
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``image`` (B, C, H, W) by ``flow`` (B, 2, H, W; x then y, in pixels).

    The sampling grid is ``linspace(-1, 1, W)`` x ``linspace(-1, 1, H)`` plus the flow scaled by
    ``(W - 1) / 2`` and ``(H - 1) / 2``; bilinear, border padding, ``align_corners=True``.
    """
    b, _, h, w = flow.shape
    xs = torch.linspace(-1.0, 1.0, w).view(1, 1, 1, w).expand(b, -1, h, -1)
    ys = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1).expand(b, -1, -1, w)
    base = torch.cat([xs, ys], 1).to(image)
    step = torch.cat([flow[:, 0:1] / ((w - 1.0) / 2.0), flow[:, 1:2] / ((h - 1.0) / 2.0)], 1)
    grid = (base + step).permute(0, 2, 3, 1)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return warped.contiguous(memory_format=torch.channels_last) if is_channels_last(image) else warped


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether a 4-D tensor is laid out channels-last (the layout of the decoders, ``AMT.forward``)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """The same values laid out channels-last (NHWC in memory): oneDNN's fastest convolution layout."""
    return x.contiguous(memory_format=torch.channels_last)


def pixel_grid(batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """(B, 2, H, W) float32 pixel coordinates, channel 0 = x (column), channel 1 = y (row)."""
    rows, cols = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device),
                                indexing="ij")
    return torch.stack([cols, rows], 0).float()[None].repeat(batch, 1, 1, 1)


# --- all-pairs correlation ---------------------------------------------------------------------------------

class CorrelationPyramid:
    """Bidirectional all-pairs correlation of two 1/8-resolution feature maps, looked up in windows.

    Facts (``raft.py`` ``BidirCorrBlock``): the volume is ``f0^T f1 / sqrt(C)``, kept both ways (each
    pixel of map 0 against all of map 1, and its transpose), then average-pooled 2x2 ``levels - 1``
    times over the *target* axes. A lookup samples a (2r+1) x (2r+1) window around ``coords / 2**level``
    with bilinear ``grid_sample`` (``align_corners=True``, zeros outside). The window offsets are
    enumerated row-major with the *first* index added to x and the second to y (the RAFT ordering);
    the output channels are level-major, (2r+1)^2 per level, float32.
    """

    def __init__(self, fmap0: torch.Tensor, fmap1: torch.Tensor, levels: int, radius: int) -> None:
        self.levels = levels
        self.radius = radius
        b, c, h, w = fmap0.shape
        volume = torch.matmul(fmap0.view(b, c, h * w).transpose(1, 2), fmap1.view(b, c, h * w))
        volume = volume.view(b, h, w, 1, h, w) / torch.sqrt(torch.tensor(c).float())
        forward = volume.reshape(b * h * w, 1, h, w)
        backward = volume.permute(0, 4, 5, 3, 1, 2).reshape(b * h * w, 1, h, w)
        self.forward_levels = [forward]
        self.backward_levels = [backward]
        for _ in range(levels - 1):
            forward = F.avg_pool2d(forward, 2, stride=2)
            backward = F.avg_pool2d(backward, 2, stride=2)
            self.forward_levels.append(forward)
            self.backward_levels.append(backward)

    def _window(self, device: torch.device) -> torch.Tensor:
        r = self.radius
        span = torch.linspace(-r, r, 2 * r + 1, device=device)
        first, second = torch.meshgrid(span, span, indexing="ij")
        return torch.stack([first, second], -1).view(1, 2 * r + 1, 2 * r + 1, 2)

    @staticmethod
    def _sample(volume: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        h, w = volume.shape[-2:]
        x, y = points.split([1, 1], dim=-1)
        grid = torch.cat([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], dim=-1)
        return F.grid_sample(volume, grid, align_corners=True)

    def lookup(self, coords0: torch.Tensor, coords1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows of the forward volume around ``coords0`` and of the backward volume around
        ``coords1`` (both (B, 2, h, w) pixel coordinates) -> two (B, levels*(2r+1)^2, h, w) tensors."""
        if coords0.shape != coords1.shape:
            raise ValueError(f"lookup coordinates differ in shape: {tuple(coords0.shape)} vs {tuple(coords1.shape)}")
        p0 = coords0.permute(0, 2, 3, 1)
        p1 = coords1.permute(0, 2, 3, 1)
        b, h, w, _ = p0.shape
        window = self._window(coords0.device)
        out0, out1 = [], []
        for level in range(self.levels):
            c0 = p0.reshape(b * h * w, 1, 1, 2) / 2 ** level + window
            c1 = p1.reshape(b * h * w, 1, 1, 2) / 2 ** level + window
            out0.append(self._sample(self.forward_levels[level], c0).view(b, h, w, -1))
            out1.append(self._sample(self.backward_levels[level], c1).view(b, h, w, -1))
        # (B, h, w, C) permuted to (B, C, h, w) is a channels-last tensor as it stands: no copy
        return torch.cat(out0, -1).permute(0, 3, 1, 2).float(), torch.cat(out1, -1).permute(0, 3, 1, 2).float()


# --- the correlation feature encoder (RAFT-style, instance norm) ----------------------------------------------

class BottleneckUnit(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 with a quarter-width middle, instance norm + ReLU after each conv, and a
    1x1 strided projection on the shortcut when the stride is not 1 (AMT-S's ``SmallEncoder``)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        mid = out_ch // 4
        self.conv1 = nn.Conv2d(in_ch, mid, 1, padding=0)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(mid, out_ch, 1, padding=0)
        self.norm1, self.norm2, self.norm3 = nn.InstanceNorm2d(mid), nn.InstanceNorm2d(mid), nn.InstanceNorm2d(out_ch)
        self.downsample = (None if stride == 1 else
                           nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride), nn.InstanceNorm2d(out_ch)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        y = F.relu(self.norm3(self.conv3(y)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + y)


class ResidualUnit(nn.Module):
    """Two 3x3 convs (the first strided), instance norm + ReLU after each, and a 1x1 strided projection
    on the shortcut when the stride is not 1 (AMT-L's ``BasicEncoder``, AMT-G's ``LargeEncoder``)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.norm1, self.norm2 = nn.InstanceNorm2d(out_ch), nn.InstanceNorm2d(out_ch)
        self.downsample = (None if stride == 1 else
                           nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride), nn.InstanceNorm2d(out_ch)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        y = F.relu(self.norm2(self.conv2(y)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + y)


_UNITS: dict[str, type[nn.Module]] = {"bottleneck": BottleneckUnit, "residual": ResidualUnit}


class CorrelationEncoder(nn.Module):
    """Features for the correlation volume, at 1/8 resolution.

    Stem: 7x7 stride-2 conv (3 -> ``stem``), instance norm, ReLU. Then named stages (``layer1``,
    ``layer2``, ``layer3`` and, in AMT-G, ``layer3_2``), each two units of ``unit`` kind whose first unit
    carries the stage stride, and a 1x1 conv to ``out_dim``. The reference passes both images as one batch;
    the norms are per image, so each image goes through alone (channel-first, where oneDNN's batch-2 64-channel
    convolutions are 1.4x slower than two batch-1 ones; docs/performance.md, "AMT").
    """

    def __init__(self, unit: UnitKind, stem: int, stages: Sequence[tuple[str, int, int]], out_dim: int) -> None:
        super().__init__()
        block = _UNITS[unit]
        self.norm1 = nn.InstanceNorm2d(stem)
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3)
        self.stage_names = tuple(name for name, _, _ in stages)
        width = stem
        for name, dim, stride in stages:
            self.add_module(name, nn.Sequential(block(width, dim, stride), block(dim, dim, 1)))
            width = dim
        self.conv2 = nn.Conv2d(width, out_dim, kernel_size=1)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(image.contiguous())))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.conv2(x)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features(img0), self.features(img1)


# --- the context pyramid and the decoders (IFRNet-style, PReLU) ---------------------------------------------------

def conv_prelu(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> nn.Sequential:
    """Conv2d (with bias) followed by a per-channel PReLU: keys ``.0.weight``, ``.0.bias``, ``.1.weight``."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, padding), nn.PReLU(out_ch))


class ContextPyramid(nn.Module):
    """Four stride-2 levels (``pyramid1`` .. ``pyramid4``) of two conv+PReLU each, giving features at
    1/2, 1/4, 1/8 and 1/16 resolution. With ``large_stem`` the first conv is 7x7 (padding 3), else 3x3."""

    def __init__(self, channels: Sequence[int], large_stem: bool) -> None:
        super().__init__()
        self.depth = len(channels)
        prev = 3
        for index, ch in enumerate(channels, 1):
            k = 7 if large_stem and index == 1 else 3
            self.add_module(f"pyramid{index}", nn.Sequential(conv_prelu(prev, ch, k, 2, k // 2),
                                                            conv_prelu(ch, ch, 3, 1, 1)))
            prev = ch

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for index in range(1, self.depth + 1):
            x = getattr(self, f"pyramid{index}")(x)
            features.append(x)
        return features


class SideChannelResBlock(nn.Module):
    """Residual block whose last ``side`` channels get their own 3x3 conv+PReLU between the full-width
    convs (twice), then a plain conv, a residual add and a PReLU (``ifrnet.py`` ``ResBlock``)."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        self.side = side
        self.conv1 = conv_prelu(channels, channels)
        self.conv2 = conv_prelu(side, side)
        self.conv3 = conv_prelu(channels, channels)
        self.conv4 = conv_prelu(side, side)
        self.conv5 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.prelu = nn.PReLU(channels)

    def _refresh_side(self, x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
        return torch.cat([x[:, :-self.side], conv(x[:, -self.side:])], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv3(self._refresh_side(self.conv1(x), self.conv2))
        out = self.conv5(self._refresh_side(out, self.conv4))
        return self.prelu(x + out)


def decoder_block(in_ch: int, width: int, side: int, out_ch: int) -> nn.Sequential:
    """The decoders' ``convblock``: conv+PReLU (``in_ch`` -> ``width``), side-channel residual block,
    then a 4x4 stride-2 transposed conv (``width`` -> ``out_ch``) that doubles the resolution."""
    return nn.Sequential(conv_prelu(in_ch, width), SideChannelResBlock(width, side),
                         nn.ConvTranspose2d(width, out_ch, 4, 2, 1, bias=True))


class InitialDecoder(nn.Module):
    """Coarsest level (1/16 -> 1/8): features of both images and the time map -> two flows + features.

    Input ``cat(f0, f1, t)`` (2c + 1 channels); output channels 0:2 = flow to frame 0, 2:4 = flow to
    frame 1, 4: = the interpolated-frame features (``out_ch``).
    """

    def __init__(self, in_ch: int, out_ch: int, side: int) -> None:
        super().__init__()
        self.convblock = decoder_block(2 * in_ch + 1, 2 * in_ch, side, out_ch + 4)

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, embt: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, w = f0.shape[2:]
        # the time map built as (B, h, w, 1) and viewed (B, 1, h, w): channels-last strides, so the
        # concatenation keeps the features' layout (a channel-first map would turn it channel-first)
        time_map = embt.permute(0, 2, 3, 1).repeat(1, h, w, 1).permute(0, 3, 1, 2)
        out = self.convblock(torch.cat([f0, f1, time_map], 1))
        return out[:, 0:2], out[:, 2:4], out[:, 4:]


class IntermediateDecoder(nn.Module):
    """A middle level (x2 resolution): features warped by the current flows -> residual flows + features.

    Input ``cat(ft, warp(f0, flow0), warp(f1, flow1), flow0, flow1)`` (3c + 4 channels); each new flow
    is its predicted residual plus ``2 * resize(flow, 2)``.
    """

    def __init__(self, in_ch: int, out_ch: int, side: int) -> None:
        super().__init__()
        self.convblock = decoder_block(3 * in_ch + 4, 3 * in_ch, side, out_ch + 4)

    def forward(self, ft: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, flow0: torch.Tensor,
                flow1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.convblock(torch.cat([ft, warp(f0, flow0), warp(f1, flow1), flow0, flow1], 1))
        new0 = out[:, 0:2] + 2.0 * resize(flow0, 2.0)
        new1 = out[:, 2:4] + 2.0 * resize(flow1, 2.0)
        return new0, new1, out[:, 4:]


class MultiFlowDecoder(nn.Module):
    """Finest level (1/2 -> full resolution): ``num_flows`` flow pairs, blend masks and colour residuals.

    The transposed conv gives 8n channels split as [2n flow0 residuals, 2n flow1 residuals, n mask
    logits, 3n residual colours]; masks go through a sigmoid; each of the n flows is its residual plus
    ``2 * resize(flow, 2)`` of the one incoming flow (repeated n times along channels).
    """

    def __init__(self, in_ch: int, side: int, num_flows: int) -> None:
        super().__init__()
        self.num_flows = num_flows
        self.convblock = decoder_block(3 * in_ch + 4, 3 * in_ch, side, 8 * num_flows)

    def forward(self, ft: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, flow0: torch.Tensor,
                flow1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        n = self.num_flows
        out = self.convblock(torch.cat([ft, warp(f0, flow0), warp(f1, flow1), flow0, flow1], 1))
        d0, d1, logits, img_res = torch.split(out, [2 * n, 2 * n, n, 3 * n], 1)
        new0 = d0 + 2.0 * resize(flow0, 2.0).repeat(1, n, 1, 1)
        new1 = d1 + 2.0 * resize(flow1, 2.0).repeat(1, n, 1, 1)
        return new0, new1, torch.sigmoid(logits), img_res


# --- the correlation-guided update --------------------------------------------------------------------------------

class FlowUpdate(nn.Module):
    """Residual update of the bidirectional flow and the frame features from a correlation lookup.

    Correlation branch: 1x1 conv (2 * levels * (2r+1)^2 -> ``corr_dim``) and, in AMT-L/G, a 3x3 conv to
    ``corr_dim2``; flow branch: 7x7 conv (4 -> 2 * ``flow_dim``) then 3x3 to ``flow_dim``; a 3x3 fusion
    to ``fc_dim``; every conv of those branches is followed by LeakyReLU(0.1). Then
    ``cat(fused, flow, features)`` feeds a conv-LReLU-conv trunk (``gru``, despite the name no GRU) and
    two conv-LReLU-conv heads: features (``cdim``) and flow (4). With a ``scale`` the update runs at
    1/scale of the features' resolution: features are resized by 1/scale first, and both deltas are
    resized back by ``scale`` (the flow delta also multiplied by it).
    """

    def __init__(self, cdim: int, hidden_dim: int, flow_dim: int, corr_dim: int, corr_dim2: int | None,
                 fc_dim: int, corr_levels: int, radius: int, scale: float | None) -> None:
        super().__init__()
        planes = corr_levels * (2 * radius + 1) ** 2
        self.scale = scale
        self.convc1 = nn.Conv2d(2 * planes, corr_dim, 1, padding=0)
        self.convc2 = None if corr_dim2 is None else nn.Conv2d(corr_dim, corr_dim2, 3, padding=1)
        self.convf1 = nn.Conv2d(4, 2 * flow_dim, 7, padding=3)
        self.convf2 = nn.Conv2d(2 * flow_dim, flow_dim, 3, padding=1)
        self.conv = nn.Conv2d(flow_dim + (corr_dim if corr_dim2 is None else corr_dim2), fc_dim, 3, padding=1)
        self.gru = self._conv_lrelu_conv(fc_dim + 4 + cdim, hidden_dim, hidden_dim)
        self.feat_head = self._conv_lrelu_conv(hidden_dim, hidden_dim, cdim)
        self.flow_head = self._conv_lrelu_conv(hidden_dim, hidden_dim, 4)

    @staticmethod
    def _conv_lrelu_conv(in_ch: int, mid: int, out_ch: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(in_ch, mid, 3, padding=1), nn.LeakyReLU(0.1),
                             nn.Conv2d(mid, out_ch, 3, padding=1))

    def forward(self, feat: torch.Tensor, flow: torch.Tensor, corr: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scale is not None:
            feat = resize(feat, 1 / self.scale)
        cor = F.leaky_relu(self.convc1(corr), 0.1)
        if self.convc2 is not None:
            cor = F.leaky_relu(self.convc2(cor), 0.1)
        flo = F.leaky_relu(self.convf1(flow), 0.1)
        flo = F.leaky_relu(self.convf2(flo), 0.1)
        fused = F.leaky_relu(self.conv(torch.cat([cor, flo], 1)), 0.1)
        trunk = self.gru(torch.cat([fused, flow, feat], 1))
        delta_feat, delta_flow = self.feat_head(trunk), self.flow_head(trunk)
        if self.scale is not None:
            delta_feat = resize(delta_feat, self.scale)
            delta_flow = self.scale * resize(delta_flow, self.scale)
        return delta_feat, delta_flow


# --- merging the flow fields ---------------------------------------------------------------------------------

def combination_block(num_flows: int, kernel: int) -> nn.Sequential:
    """conv (3n -> 6n), PReLU(6n), conv (6n -> 3): the learned correction over the n candidate frames
    (3x3 in AMT-S, 7x7 in AMT-L/G)."""
    pad = kernel // 2
    return nn.Sequential(nn.Conv2d(3 * num_flows, 6 * num_flows, kernel, 1, pad), nn.PReLU(6 * num_flows),
                         nn.Conv2d(6 * num_flows, 3, kernel, 1, pad))


def combine_flows(comb_block: nn.Module, img0: torch.Tensor, img1: torch.Tensor, flow0: torch.Tensor,
                  flow1: torch.Tensor, mask: torch.Tensor, img_res: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """Merge n candidate frames into one (``multi_flow.py`` ``multi_flow_combine``), before any clamp.

    Candidate k = ``mask_k * warp(img0, flow0_k) + (1 - mask_k) * warp(img1, flow1_k) + mean + res_k``
    (images are mean-subtracted, ``mean`` is the per-sample scalar); the result is the mean of the
    candidates plus ``comb_block`` applied to all of them stacked along channels.
    """
    b, c, h, w = flow0.shape
    n = c // 2

    def per_flow(x: torch.Tensor, channels: int) -> torch.Tensor:
        return x.reshape(b, n, channels, h, w).reshape(b * n, channels, h, w)

    def repeated(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x] * n, 1).reshape(b * n, *x.shape[1:])

    warped0 = warp(repeated(img0), per_flow(flow0, 2))
    warped1 = warp(repeated(img1), per_flow(flow1, 2))
    m = per_flow(mask, 1)
    candidates = m * warped0 + (1 - m) * warped1 + repeated(mean) + per_flow(img_res, 3)
    candidates = candidates.reshape(b, n, 3, h, w)
    merged = candidates.mean(1) + comb_block(to_channels_last(candidates.view(b, -1, h, w)))
    return merged.contiguous()  # the caller's frame, channel-first as the inputs came
