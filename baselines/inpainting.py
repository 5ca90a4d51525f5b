"""Simple video completion baselines (implement ``triptych.methods.Inpainter``).

``mean_fill`` is a floor; ``telea`` and ``propagation`` are the classical baselines of issue 5 item 4.

Output quantisation (``telea``, ``propagation``). These two baselines compute 8-bit frames (OpenCV works
on uint8). The harness turns a prediction into uint8 as E2FGVI's ``evaluate.py`` does, by *truncation*:
``(pred * 255).astype(uint8)`` (``benchmarks/vos.py``). Returning ``u / 255`` puts every value exactly
on the truncation edge: it survives only if ``(u / 255) * 255`` rounds back to ``u`` or above, and one
ulp less truncates to ``u - 1`` (any change of arithmetic, device or dtype may cause that). So they
return ``(u + 0.5) / 255``: times 255 that is ``u + 0.5`` within float32 rounding (far less than 0.5),
which truncates to exactly ``u`` for every u in 0..255 (255.5 is clipped to 255 first). The scored frame
is therefore exactly the uint8 frame the baseline computed, and ``triptych inpaint`` writes the same
pixels. The float frames the harness passes in come from ``uint8 / 255``, so they are turned back into
uint8 by rounding (exact).
"""

from __future__ import annotations

import numpy as np
import torch

TELEA_RADIUS = 3


class MeanFill:
    """Fills each frame's hole with the mean colour of that frame's visible pixels: a floor that any
    method must beat. Deterministic; no weights."""

    def inpaint(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        visible = 1.0 - masks
        counts = visible.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
        mean = (frames * visible).sum(dim=(2, 3), keepdim=True) / counts
        return frames * visible + mean * masks


def make_mean_fill() -> MeanFill:
    return MeanFill()


# --------------------------------------------------------------------------------------------------
# uint8 <-> the float convention of triptych.methods


def frames_to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] (from uint8 / 255) -> (T, H, W, 3) uint8, by rounding."""
    array = frames.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8))


def masks_to_holes(masks: torch.Tensor) -> np.ndarray:
    """(T, 1, H, W) float, 1 = hole -> (T, H, W) uint8 {0, 1} (any value above 0.5 is a hole)."""
    return np.ascontiguousarray((masks.detach().to("cpu")[:, 0] > 0.5).numpy().astype(np.uint8))


def uint8_to_frames(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32 ``(u + 0.5) / 255``, which the harness's truncating
    ``(x * 255).astype(uint8)`` maps back to exactly ``u`` (module docstring)."""
    values = (frames.astype(np.float32) + np.float32(0.5)) / np.float32(255.0)
    return torch.from_numpy(np.ascontiguousarray(values.transpose(0, 3, 1, 2)))


def telea_frame(frame: np.ndarray, hole: np.ndarray, radius: int = TELEA_RADIUS) -> np.ndarray:
    """``cv2.inpaint(frame, hole, radius, INPAINT_TELEA)`` of one uint8 RGB frame; the pixels under
    the hole are not read (Telea fills from the known pixels only)."""
    import cv2

    if not hole.any():
        return frame.copy()
    return cv2.inpaint(np.ascontiguousarray(frame), np.ascontiguousarray(hole, dtype=np.uint8), radius,
                       cv2.INPAINT_TELEA)


# --------------------------------------------------------------------------------------------------
# telea


class Telea:
    """Per-frame OpenCV Telea inpainting (``cv2.inpaint``, radius 3, ``INPAINT_TELEA``) of the hole.
    No temporal information; deterministic; no weights. Visible pixels are returned unchanged."""

    def __init__(self, radius: int = TELEA_RADIUS) -> None:
        self.radius = int(radius)

    def inpaint(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        images, holes = frames_to_uint8(frames), masks_to_holes(masks)
        out = np.stack([telea_frame(f, h, self.radius) for f, h in zip(images, holes)])
        return uint8_to_frames(out)


def make_telea(radius: int = TELEA_RADIUS) -> Telea:
    return Telea(radius)


# --------------------------------------------------------------------------------------------------
# propagation


def _sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` (H, W[, C]) float32 at points (x, y) (N,), replicate border."""
    import cv2

    out = cv2.remap(image, x.reshape(-1, 1), y.reshape(-1, 1), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(len(x), -1)


FLOW_MARGIN = 8  # px: DIS matches 8x8 patches, so flow within a patch of a hole saw the hole's fill


def complete_flow(flow: np.ndarray, hole: np.ndarray, margin: int = FLOW_MARGIN) -> np.ndarray:
    """Replace the flow inside ``hole`` (grown by ``margin`` px, 3x3 square) by a smooth fill from the
    flow around it: the hidden background is taken to continue the motion around the hole, as
    flow-completion methods assume. The fill is a normalised Gaussian convolution of the known flow at
    the smallest scale (sigma 2, 4, ..., 128 px) whose known-pixel weight reaches 5 %; (``cv2.inpaint``
    is not used: on float32 input it returns values far outside the known range.)"""
    import cv2

    if not hole.any():
        return flow
    region = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=margin) if margin else hole
    known = (region == 0).astype(np.float32)
    if not known.any():
        return np.zeros_like(flow)
    out = np.ascontiguousarray(flow, dtype=np.float32).copy()
    todo = region > 0
    weighted = out * known[..., None]
    for sigma in (2, 4, 8, 16, 32, 64, 128):
        weight = cv2.GaussianBlur(known, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        ready = todo & (weight >= 0.05)
        if ready.any():
            blurred = cv2.GaussianBlur(weighted, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
            out[ready] = blurred[ready] / weight[ready][:, None]
            todo &= ~ready
        if not todo.any():
            break
    if todo.any():
        out[todo] = flow[known > 0].mean(axis=0)
    return out


class Propagation:
    """Flow-guided propagation: fill each hole pixel from the nearest frame in time that sees it.

    1. Each frame's hole is Telea-filled first (``telea_frame``). DIS optical flow
       (``triptych.vision.flow.dis_flow``: preset MEDIUM on the grayscale uint8 frames) is computed
       between neighbouring frames of these Telea-filled frames, forward F_(t->t+1) and backward
       F_(t+1->t). The pixels under the holes are therefore never read, so the output does not depend
       on what the hole hides. DIS's flow over a Telea fill is unreliable (the fill moves with the
       hole), so each pair's flow is replaced over the union of the two frames' holes, grown by
       ``FLOW_MARGIN`` px, by a smooth fill from the flow around it (``complete_flow``).
    2. For each hole pixel x of frame t, its position is carried frame by frame by chaining the
       neighbour flows (bilinear flow lookup), backwards (t-1, t-2, ...) and forwards (t+1, t+2, ...)
       at once. At distance k = 1, 2, ... the pixel is *seen* by frame s = t -/+ k when its carried
       position lies inside the frame and all four bilinear neighbours are outside frame s's hole;
       it takes the bilinear colour of frame s there. When both directions see it at the same
       distance, it takes the mean of the two colours. A carried position that leaves the frame
       stops that direction.
    3. Hole pixels that no frame sees keep the Telea fill. The result is rounded to uint8.

    Deterministic (no randomness; DIS and the warps are pure functions of the frames); no weights.
    ``max_distance`` bounds k (default: the whole video).
    """

    def __init__(self, radius: int = TELEA_RADIUS, max_distance: int | None = None) -> None:
        self.radius = int(radius)
        self.max_distance = max_distance

    @property
    def temporal_reach(self) -> int | None:
        """Frame t reads frames t - max_distance .. t + max_distance only, so a benchmark may feed a long
        video in chunks (``benchmarks/vos.py``); None (the whole video) when unbounded."""
        return self.max_distance

    def inpaint(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        from triptych.vision.flow import dis_flow

        images, holes = frames_to_uint8(frames), masks_to_holes(masks)
        count, height, width = holes.shape
        filled = np.stack([telea_frame(f, h, self.radius) for f, h in zip(images, holes)])
        # F_(t->t+1) and F_(t+1->t), each completed over the union of the two frames' holes
        pair_holes = [holes[t] | holes[t + 1] for t in range(count - 1)]
        forward = [complete_flow(dis_flow(filled[t], filled[t + 1]), pair_holes[t]) for t in range(count - 1)]
        backward = [complete_flow(dis_flow(filled[t + 1], filled[t]), pair_holes[t]) for t in range(count - 1)]
        colours = filled.astype(np.float32)
        hole_f = holes.astype(np.float32)
        reach = count - 1 if self.max_distance is None else min(int(self.max_distance), count - 1)
        out = filled.copy()
        for t in range(count):
            ys, xs = np.nonzero(holes[t])
            if len(xs) == 0:
                continue
            pending = np.ones(len(xs), dtype=bool)
            result = np.zeros((len(xs), 3), dtype=np.float32)
            # carried positions: [backward, forward], each (x, y, alive)
            tracks = [[xs.astype(np.float32), ys.astype(np.float32), np.ones(len(xs), dtype=bool)] for _ in range(2)]
            for k in range(1, reach + 1):
                seen, got = [], []
                for direction, track in zip((-1, 1), tracks):
                    s = t + direction * k
                    x, y, alive = track
                    if not (0 <= s < count) or not alive.any():
                        track[2] = np.zeros_like(alive)
                        seen.append(np.zeros(len(xs), dtype=bool))
                        got.append(result)
                        continue
                    flow = backward[s] if direction < 0 else forward[s - 1]  # from frame s -/+ 1 to s
                    step = _sample(flow, x, y)
                    x, y = x + step[:, 0], y + step[:, 1]
                    alive = alive & (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
                    track[0], track[1], track[2] = x, y, alive
                    visible = alive & (_sample(hole_f[s], x, y)[:, 0] == 0)
                    seen.append(visible & pending)
                    got.append(_sample(colours[s], x, y))
                both = seen[0] & seen[1]
                only_b, only_f = seen[0] & ~seen[1], seen[1] & ~seen[0]
                result[both] = (got[0][both] + got[1][both]) / 2
                result[only_b] = got[0][only_b]
                result[only_f] = got[1][only_f]
                pending &= ~(seen[0] | seen[1])
                if not pending.any():
                    break
            done = ~pending
            out[t, ys[done], xs[done]] = np.clip(np.rint(result[done]), 0, 255).astype(np.uint8)
        return uint8_to_frames(out)


def make_propagation(radius: int = TELEA_RADIUS, max_distance: int | None = None) -> Propagation:
    return Propagation(radius, max_distance)
