"""Classical frame interpolation baselines (implement ``triptych.methods.Interpolator``).

Every baseline takes the time ``t`` of the output frame (0.5 for the 2x benchmarks, k/8 for the x8 ones)
as a keyword with default 0.5, and returns float32 (3, H, W), unrounded.
"""

from __future__ import annotations

import numpy as np
import torch

from triptych.errors import InputError


def _check_pair(name: str, frame0: torch.Tensor, frame1: torch.Tensor, t: float) -> None:
    if frame0.ndim != 3 or frame0.shape[0] != 3 or frame0.shape != frame1.shape:
        raise InputError(f"{name}: expected two (3, H, W) frames of one size, got {tuple(frame0.shape)} and "
                         f"{tuple(frame1.shape)}", fix="pass RGB channel-first frames (triptych.methods)")
    if not 0.0 <= t <= 1.0:
        raise InputError(f"{name}: time t={t} is outside [0, 1]", fix="interpolate between the two frames")


class LinearBlend:
    """``(1 - t) * frame0 + t * frame1`` in float32, unrounded: the no-motion floor of every VFI table."""

    def interpolate(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float = 0.5) -> torch.Tensor:
        _check_pair("linear_blend", frame0, frame1, t)
        if t == 0.5:  # the same operations as (img2tensor(i0) + img2tensor(i1)) / 2, bit for bit
            return (frame0 + frame1) / 2
        return (1.0 - t) * frame0 + t * frame1


class FrameRepeat:
    """The input frame nearest in time, unchanged: frame0 for t <= 0.5, frame1 for t > 0.5 (a tie goes
    to the earlier frame, so at t = 0.5 it is frame0). The "no interpolation" floor: what a player shows
    when it duplicates frames."""

    def interpolate(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float = 0.5) -> torch.Tensor:
        _check_pair("frame_repeat", frame0, frame1, t)
        return (frame0 if t <= 0.5 else frame1).clone()


def _to_uint8_rgb(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded: what DIS (8-bit only) is run on."""
    return np.round(np.clip(frame.permute(1, 2, 0).numpy(), 0.0, 1.0) * 255.0).astype(np.uint8)


class DISFlow:
    """A classical flow-based interpolator: DIS optical flow both ways, linear motion to time t,
    backward warping of both frames, and occlusion-aware blending.

    1. Flows ``F01 = DIS(I0 -> I1)`` and ``F10 = DIS(I1 -> I0)`` with ``triptych.vision.flow.dis_flow``
       (OpenCV DIS, preset MEDIUM, on the rounded uint8 grey frames; the E_warp ``dis`` backend).
    2. Flows from time t, under linear motion (Jiang et al., Super SloMo, CVPR 2018, eq. 4):
       ``F_t0 = -(1 - t) t F01 + t^2 F10`` and ``F_t1 = (1 - t)^2 F01 - t (1 - t) F10``.
    3. Backward warping ``g_k(x) = I_k(x + F_tk(x))``, bilinear, edge samples clamped
       (``triptych.vision.flow.warp_backward``), on the float frames (never rounded).
    4. Occlusion from forward-backward consistency (Sundaram et al. 2010, the rule of Lai et al. 2018:
       ``|F + B_w|^2 > 0.01 (|F|^2 + |B_w|^2) + 0.5``, ``flow.forward_backward_mask``). A pixel of I0
       whose flow to I1 is inconsistent is hidden in I1: its content at time t is taken from I0 only, and
       likewise for I1. The inconsistency maps are warped to time t with the same flows, giving the
       visibilities ``V_t0 = 1 - occ1(x + F_t1)`` and ``V_t1 = 1 - occ0(x + F_t0)``.
    5. ``I_t = (w0 g0 + w1 g1) / (w0 + w1)`` with ``w0 = (1 - t)(V_t0 + eps)``, ``w1 = t (V_t1 + eps)``:
       the time weights (1 - t) / t wherever both frames see the pixel (or neither does).

    At t = 0 the output is I0 and at t = 1 it is I1 (the flows from t vanish there).
    """

    def __init__(self, eps: float = 1e-3) -> None:
        if not eps > 0:
            raise InputError(f"dis_flow: eps must be positive, not {eps}", fix="use a small value such as 1e-3")
        self.eps = float(eps)

    def interpolate(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float = 0.5) -> torch.Tensor:
        from triptych.vision.flow import dis_flow, forward_backward_mask, warp_backward

        _check_pair("dis_flow", frame0, frame1, t)
        f0 = frame0.detach().to("cpu", torch.float32)
        f1 = frame1.detach().to("cpu", torch.float32)
        u0, u1 = _to_uint8_rgb(f0), _to_uint8_rgb(f1)
        flow01, flow10 = dis_flow(u0, u1), dis_flow(u1, u0)
        t32 = np.float32(t)
        flow_t0 = -(1 - t32) * t32 * flow01 + t32 * t32 * flow10
        flow_t1 = (1 - t32) * (1 - t32) * flow01 - t32 * (1 - t32) * flow10
        occluded0 = forward_backward_mask(flow01, flow10).astype(np.float32)[..., None]  # in I0's grid
        occluded1 = forward_backward_mask(flow10, flow01).astype(np.float32)[..., None]  # in I1's grid
        # the frames and their occlusion maps warped together: one sampling per frame
        warped0 = warp_backward(np.concatenate([f0.permute(1, 2, 0).numpy(), occluded0], 2), flow_t0)
        warped1 = warp_backward(np.concatenate([f1.permute(1, 2, 0).numpy(), occluded1], 2), flow_t1)
        eps = np.float32(self.eps)
        w0 = (1 - t32) * (np.float32(1) - warped1[..., 3:] + eps)
        w1 = t32 * (np.float32(1) - warped0[..., 3:] + eps)
        total = w0 + w1
        out = (w0 / total) * warped0[..., :3] + (w1 / total) * warped1[..., :3]
        return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32))


def make_linear_blend() -> LinearBlend:
    return LinearBlend()


def make_frame_repeat() -> FrameRepeat:
    return FrameRepeat()


def make_dis_flow(eps: float = 1e-3) -> DISFlow:
    return DISFlow(eps)
