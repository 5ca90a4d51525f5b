"""The sliding-window inference of E2FGVI's test protocol, for any window model of video completion.

Facts (MCG-NKU/E2FGVI @ 709cbe3 ``evaluate.py`` / ``test.py``, docs/protocols/video_completion.md):

- windows are centred on ``f = 0, s, 2s, ...`` (``neighbor_stride`` s = 5); window f holds the local
  frames ``max(0, f - s) .. min(T - 1, f + s)`` (up to 11) followed by the reference frames: every
  ``ref_stride``-th frame of the whole video (10) that is not already a local frame
  (``get_ref_index``, ``num_ref = -1``);
- the model input: frames ``uint8 / 255 * 2 - 1`` (float32, ``ToTorchFormatTensor`` then ``* 2 - 1``),
  masks ``{0, 1}`` float32 with 1 = hole (the dilated mask), batch axis first;
- the model returns at least the local frames in [-1, 1]; each becomes ``(x + 1) / 2 * 255`` cast to
  uint8 by truncation (``astype``, not rounding), and is composited ``pred * mask + frame * (1 - mask)``
  with the uint8 frame and mask;
- a frame that several windows cover is merged in window order as ``0.5 * old + 0.5 * new`` in float32
  (so with three windows the weights are 1/4, 1/4, 1/2); the merged composite is what is scored.

``complete_video`` streams: frames are read through a callable, and each composite is yielded as soon as
no later window covers it. It holds (a) the reference frames with their masks (``ceil(T / ref_stride)``
uint8 frames: the protocol shows every window the references of the whole video), (b) the frames of the
current window (at most ``2 * s + 1``, uint8) and (c) the partial composites of the frames the next window
still covers (at most ``2 * s + 1``, float32). Nothing else grows with T.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from triptych.errors import InputError, TriptychError

NEIGHBOR_STRIDE = 5
REF_STRIDE = 10

# model(frames (1, n, 3, H, W) in [-1, 1], masks (1, n, 1, H, W) in {0, 1}, num_local) -> (>= num_local, 3, H, W)
WindowModel = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
# index -> (frame (H, W, 3) uint8 RGB, hole (H, W) uint8 {0, 1})
FrameReader = Callable[[int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Window:
    """One model call: its local frames (composited and merged) and its reference frames (context only)."""

    center: int
    local: tuple[int, ...]
    references: tuple[int, ...]

    @property
    def frame_ids(self) -> tuple[int, ...]:
        """The frames in the order the model sees them: local ones, then references."""
        return self.local + self.references


def plan_windows(num_frames: int, neighbor_stride: int = NEIGHBOR_STRIDE,
                 ref_stride: int = REF_STRIDE) -> list[Window]:
    """The windows of a ``num_frames`` video, in the order they run (module docstring)."""
    if num_frames < 1:
        raise InputError(f"a video needs at least one frame, got {num_frames}", fix="check the frame folder")
    if neighbor_stride < 1 or ref_stride < 1:
        raise TriptychError(f"neighbor_stride {neighbor_stride} and ref_stride {ref_stride} must be positive",
                            fix="E2FGVI's protocol uses 5 and 10")
    windows = []
    for f in range(0, num_frames, neighbor_stride):
        local = tuple(range(max(0, f - neighbor_stride), min(num_frames, f + neighbor_stride + 1)))
        refs = tuple(i for i in range(0, num_frames, ref_stride) if i not in local)
        windows.append(Window(f, local, refs))
    return windows


def to_model_input(frames: np.ndarray, holes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, H, W, 3) uint8 and (n, H, W) {0, 1} -> (1, n, 3, H, W) ``u / 255 * 2 - 1`` and (1, n, 1, H, W),
    float32, contiguous (every step exactly rounded, as E2FGVI's dataset builds them)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous().float().div(255) * 2 - 1
    m = torch.from_numpy(np.ascontiguousarray(holes)).float()[:, None]
    return x[None], m[None]


def composite(pred: torch.Tensor, frames: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """(n, 3, H, W) model output in [-1, 1] -> (n, H, W, 3) uint8 composites ``trunc(pred) * hole +
    frame * (1 - hole)``, with ``trunc`` = ``((x + 1) / 2 * 255).astype(uint8)``. Values are clipped to
    [0, 255] first so that an out-of-range model cannot wrap around (a no-op for tanh outputs)."""
    scaled = ((pred.detach().to("cpu", torch.float32) + 1) / 2).permute(0, 2, 3, 1).numpy() * 255
    truncated = np.clip(scaled, 0, 255).astype(np.uint8)
    hole = holes[..., None].astype(np.uint8)
    return truncated * hole + frames * (1 - hole)


def complete_video(model: WindowModel, num_frames: int, read: FrameReader,
                   neighbor_stride: int = NEIGHBOR_STRIDE, ref_stride: int = REF_STRIDE
                   ) -> Iterator[tuple[int, np.ndarray]]:
    """Run ``model`` over the windows of a video; yield ``(index, composite)`` in frame order, each
    composite (H, W, 3) float32 in [0, 255] (the merged value E2FGVI scores), as soon as it is final."""
    windows = plan_windows(num_frames, neighbor_stride, ref_stride)
    references = set(range(0, num_frames, ref_stride))
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    merged: dict[int, np.ndarray] = {}
    emitted = 0
    for w_index, window in enumerate(windows):
        for i in window.frame_ids:
            if i not in cache:
                cache[i] = _checked(read(i), i, cache)
        frames = np.stack([cache[i][0] for i in window.frame_ids])
        holes = np.stack([cache[i][1] for i in window.frame_ids])
        x, m = to_model_input(frames, holes)
        n_local = len(window.local)
        pred = model(x, m, n_local)
        if pred.ndim != 4 or pred.shape[0] < n_local or tuple(pred.shape[1:]) != tuple(x.shape[2:]):
            raise TriptychError(f"window model returned shape {tuple(pred.shape)} for a window of {n_local} local "
                                f"frames of shape {tuple(x.shape[2:])}",
                                fix="return (n >= num_local, 3, H, W) frames in [-1, 1], local frames first")
        if not torch.isfinite(pred[:n_local]).all():
            raise TriptychError(f"window model returned NaN or Inf for the window centred on frame {window.center}",
                                fix="fix the model; triptych never scores non-finite outputs")
        for i, comp in zip(window.local, composite(pred[:n_local], frames[:n_local], holes[:n_local])):
            previous = merged.get(i)
            merged[i] = (comp if previous is None
                         else previous.astype(np.float32) * 0.5 + comp.astype(np.float32) * 0.5)
        done = windows[w_index + 1].local[0] if w_index + 1 < len(windows) else num_frames
        for i in range(emitted, done):
            yield i, merged.pop(i).astype(np.float32)
        emitted = done
        for i in [i for i in cache if i < done and i not in references]:
            del cache[i]


def _checked(item: tuple[np.ndarray, np.ndarray], index: int,
             cache: dict[int, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """A frame must be (H, W, 3) uint8 with an (H, W) {0, 1} hole, the same size as the others."""
    frame, hole = item
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"frame {index}: expected (H, W, 3) uint8 RGB, got {frame.dtype} {frame.shape}",
                         fix="read frames as 8-bit RGB (triptych.media.read_rgb)")
    if hole.shape != frame.shape[:2] or hole.dtype != np.uint8 or hole.max(initial=0) > 1:
        raise InputError(f"frame {index}: the hole must be (H, W) uint8 with values 0/1 matching the frame "
                         f"{frame.shape[:2]}, got {hole.dtype} {hole.shape}",
                         fix="threshold the mask (> 0 = hole) and give it the frame's size")
    first = next(iter(cache.values()), None)
    if first is not None and first[0].shape != frame.shape:
        raise InputError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, earlier frames are "
                         f"{first[0].shape[1]}x{first[0].shape[0]}", fix="all frames of a video must have one size")
    return frame, hole
