"""The method itself (imported only when it is used: the package's ``__init__`` stays light, because
every triptych command loads the entry point)."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def _gray(frame: torch.Tensor) -> np.ndarray:
    rgb = (frame.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _warp(frame: torch.Tensor, flow: np.ndarray, t: float) -> np.ndarray:
    """Backward-warp ``frame`` by ``t`` times ``flow`` (an approximation of the flow from time t)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    image = frame.permute(1, 2, 0).numpy()
    return cv2.remap(image, gx + t * flow[..., 0], gy + t * flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


class DisWarp:
    def __init__(self) -> None:
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def interpolate(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float) -> torch.Tensor:
        g0, g1 = _gray(frame0), _gray(frame1)
        flow_t0 = self.dis.calc(g1, g0, None)  # from frame1 towards frame0
        flow_t1 = self.dis.calc(g0, g1, None)
        from0 = _warp(frame0, flow_t0, t)
        from1 = _warp(frame1, flow_t1, 1.0 - t)
        out = (1.0 - t) * from0 + t * from1
        return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).float()


def make_dis_warp() -> DisWarp:
    return DisWarp()
