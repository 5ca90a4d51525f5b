"""Optical flow for E_warp: flow files (read and write), the flow backends, and warping and occlusion by a
flow (the Resample2d kernel and the occlusion rule of Lai et al. 2018), as pure functions.

Conventions (docs/protocols/video_completion.md, "E_warp"; docs/conventions.md, ``--flow-dir``):

- A flow is float32 (H, W, 2), channel 0 = dx (horizontal, +right), channel 1 = dy (vertical, +down),
  in pixels. ``F_(a->b)(x)`` maps pixel x of frame a to ``x + F(x)`` in frame b.
- For a video of T frames there is one pair per t = 0..T-2: the forward flow ``F_(t->t+1)`` and the
  backward flow ``F_(t+1->t)``. Pair t's index is the frame's position in the sorted frame list.
- ``--flow-dir`` holds ``fw_%05d.npy`` (forward) and ``bw_%05d.npy`` (backward) for t = 0..T-2, or the
  same names with ``.flo`` (Middlebury); with several videos, the flows of video V go in
  ``<flow-dir>/V/``.
- The flows are computed on the ground-truth frames and are shared by every method scored on that
  video.

Backends (each one is a metric variant of ``ewarp``, ``metrics/specs/ewarp.yaml``):

- ``files`` (``file_flow_pairs``): stored flows, read from ``--flow-dir``.
- ``dis`` (``dis_flow_pairs``): OpenCV DIS optical flow with preset ``DISOPTICAL_FLOW_PRESET_MEDIUM``,
  on ``cv2.cvtColor(RGB2GRAY)`` of the uint8 ground-truth frames at native resolution, a fresh
  instance per call. This is how the flows of the E_warp fixture were made. ``dis_provenance`` records
  the OpenCV version and every DIS parameter, because the flows depend on them.
- ``raft`` (``raft_flow_pairs``): torchvision RAFT-Large with the registered weights
  ``raft_large_c_t_skht_v2``, loaded through ``triptych.weights``.

The reference (Lai et al. 2018) uses FlowNet2, whose weights are no longer downloadable. No backend
here reproduces the published numbers; each one is named in the results.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from triptych.atomic import atomic_write
from triptych.media import load_npy
from triptych.errors import InputError, TriptychError

FLO_MAGIC = np.float32(202021.25)  # Middlebury .flo tag: the bytes "PIEH" read as a little-endian float32
FLO_HEADER_BYTES = 12  # float32 magic, int32 width, int32 height
_MAX_FLO_SIDE = 1 << 16
FLOW_SUFFIXES = (".npy", ".flo")
FORWARD_PREFIX = "fw"
BACKWARD_PREFIX = "bw"
# Occlusion thresholds of utils.detect_occlusion (Lai et al. 2018), applied in float32 as the reference does.
FB_RELATIVE = np.float32(0.01)  # mask1: |F + B_w|^2 > 0.01 (|F|^2 + |B_w|^2) + 0.5
FB_ABSOLUTE = np.float32(0.5)
MB_RELATIVE = np.float32(0.01)  # mask2: |grad F|^2 > 0.01 |F|^2 + 0.002
MB_ABSOLUTE = np.float32(0.002)


@dataclass(frozen=True)
class FlowPair:
    """The two flows of pair t: ``forward`` = F_(t->t+1), ``backward`` = F_(t+1->t), each (H, W, 2) float32."""

    forward: np.ndarray
    backward: np.ndarray


# --------------------------------------------------------------------------------------------------
# Flow arrays and files


def check_flow(flow: np.ndarray, name: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Validate a flow and return it as C-contiguous float32 (H, W, 2).

    A flow must be a floating-point array of shape (H, W, 2) with finite values. If ``shape`` = (H, W)
    is given, the flow must have that size. Errors name ``name`` (the file, or a description).
    """
    if not isinstance(flow, np.ndarray):
        raise InputError(f"{name}: a flow must be a numpy array, not {type(flow).__name__}",
                         fix="pass a float32 array of shape (H, W, 2), channel 0 = dx")
    if flow.ndim != 3 or flow.shape[2] != 2:
        hint = " (it looks channel-first: transpose it to (H, W, 2))" if flow.ndim == 3 and flow.shape[0] == 2 else ""
        raise InputError(f"{name}: flow has shape {flow.shape}, expected (H, W, 2){hint}",
                         fix="store flows as float32 (H, W, 2), channel 0 = dx, channel 1 = dy, in pixels")
    if not np.issubdtype(flow.dtype, np.floating):
        raise InputError(f"{name}: flow has dtype {flow.dtype}, expected floating point (float32)",
                         fix="store flows as float32 (H, W, 2) in pixels")
    if shape is not None and tuple(flow.shape[:2]) != tuple(shape):
        raise InputError(
            f"{name}: flow is {flow.shape[1]}x{flow.shape[0]} (WxH) but the frames are {shape[1]}x{shape[0]}",
            fix="compute the flow on the ground-truth frames at the resolution that is scored")
    if not np.isfinite(flow).all():
        raise InputError(f"{name}: flow contains NaN or Inf", fix="recompute the flow; every vector must be finite")
    return np.ascontiguousarray(flow, dtype=np.float32)


def read_npy_flow(path: str | Path) -> np.ndarray:
    """Read a ``.npy`` flow: float32 (H, W, 2), channel 0 = dx (docs/conventions.md, ``--flow-dir``)."""
    path = Path(path)
    array = load_npy(path, "flow")
    if array.dtype != np.float32:
        raise InputError(f"{path}: flow has dtype {array.dtype}, expected float32",
                         fix="save with numpy.save(path, flow.astype(numpy.float32))")
    return check_flow(array, str(path))


def read_flo(path: str | Path) -> np.ndarray:
    """Read a Middlebury ``.flo`` file as float32 (H, W, 2).

    Layout: float32 magic 202021.25, int32 width, int32 height, then H x W x 2 float32 values in row
    order (u, v interleaved), all little-endian. The magic number, the sizes and the file length are
    checked, and every error names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: flow file not found", fix="check the path, or compute the missing flow")
    data = path.read_bytes()
    if len(data) < FLO_HEADER_BYTES:
        raise InputError(f"{path}: {len(data)} bytes is too short for a .flo header ({FLO_HEADER_BYTES} bytes)",
                         fix="the file is truncated; rewrite it")
    magic = np.frombuffer(data, dtype="<f4", count=1)[0]
    if magic != FLO_MAGIC:
        raise InputError(f"{path}: not a Middlebury .flo file (magic number {magic!r}, expected 202021.25)",
                         fix="write .flo files with the Middlebury layout (triptych.vision.flow.write_flo), "
                             "or store the flow as .npy (H, W, 2) float32")
    width, height = (int(v) for v in np.frombuffer(data, dtype="<i4", count=2, offset=4))
    if not (0 < width <= _MAX_FLO_SIDE and 0 < height <= _MAX_FLO_SIDE):
        raise InputError(f"{path}: implausible .flo size {width}x{height} (WxH)",
                         fix="the header is corrupt; rewrite the file")
    expected = FLO_HEADER_BYTES + width * height * 2 * 4
    if len(data) != expected:
        raise InputError(f"{path}: .flo of {width}x{height} needs {expected} bytes, the file has {len(data)}",
                         fix="the file is truncated or padded; rewrite it")
    flow = np.frombuffer(data, dtype="<f4", offset=FLO_HEADER_BYTES).reshape(height, width, 2)
    return check_flow(flow.astype(np.float32), str(path))


def write_flo(path: str | Path, flow: np.ndarray) -> Path:
    """Write a flow (H, W, 2) as a Middlebury ``.flo`` file (atomically). ``read_flo`` reads it back exactly."""
    path = Path(path)
    flow = check_flow(flow, str(path))
    height, width = flow.shape[:2]
    payload = (np.array([FLO_MAGIC], dtype="<f4").tobytes() + np.array([width, height], dtype="<i4").tobytes()
               + flow.astype("<f4").tobytes())
    return atomic_write(path, lambda tmp: tmp.write_bytes(payload))


def read_flow(path: str | Path) -> np.ndarray:
    """Read a ``.npy`` or ``.flo`` flow as float32 (H, W, 2); any other suffix is refused."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return read_npy_flow(path)
    if suffix == ".flo":
        return read_flo(path)
    raise InputError(f"{path}: unsupported flow file type {suffix or '(no suffix)'!r}",
                     fix="store flows as .npy (H, W, 2) float32 or Middlebury .flo")


# --------------------------------------------------------------------------------------------------
# Backend "files": stored flows in --flow-dir


def flow_path(flow_dir: str | Path, prefix: str, t: int) -> Path:
    """The file of flow ``prefix`` (``fw`` / ``bw``) of pair t in ``flow_dir``: ``<prefix>_%05d.npy`` or ``.flo``.

    A missing file, or both suffixes for the same flow, is an error that names the file.
    """
    flow_dir = Path(flow_dir)
    found = [flow_dir / f"{prefix}_{t:05d}{suffix}" for suffix in FLOW_SUFFIXES]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        raise InputError(f"{flow_dir}: both {found[0].name} and {found[1].name} exist for pair {t}",
                         fix="keep one file per flow (.npy or .flo)")
    if not found:
        direction = "F(t->t+1)" if prefix == FORWARD_PREFIX else "F(t+1->t)"
        raise InputError(
            f"{flow_dir / f'{prefix}_{t:05d}.npy'}: flow file not found (nor .flo); pair {t} needs its "
            f"{'forward' if prefix == FORWARD_PREFIX else 'backward'} flow {direction} with t = {t}",
            fix="store fw_%05d.npy (t->t+1) and bw_%05d.npy (t+1->t) for t = 0..T-2 of every video, computed "
                "on the ground-truth frames (docs/conventions.md, --flow-dir); or use --variant dis")
    return found[0]


def flow_files(flow_dir: str | Path, num_frames: int) -> list[tuple[Path, Path]]:
    """The (forward, backward) files of pairs 0..T-2, all checked to exist before any is read.

    ``flow_dir`` must hold flows for exactly T-1 pairs: a forward flow for pair T-1 or beyond means the
    flows were computed on a different number of frames, and is an error.
    """
    flow_dir = Path(flow_dir)
    if not flow_dir.is_dir():
        raise InputError(f"--flow-dir {flow_dir}: no such folder",
                         fix="point --flow-dir at the stored flows (fw_%05d.npy, bw_%05d.npy)")
    if num_frames < 2:
        raise InputError(f"{flow_dir}: a video of {num_frames} frame(s) has no frame pair",
                         fix="E_warp needs at least 2 frames per video")
    files = [(flow_path(flow_dir, FORWARD_PREFIX, t), flow_path(flow_dir, BACKWARD_PREFIX, t))
             for t in range(num_frames - 1)]
    extra = sorted(p.name for suffix in FLOW_SUFFIXES for p in flow_dir.glob(f"{FORWARD_PREFIX}_*{suffix}")
                   if p.stem[3:].isdigit() and int(p.stem[3:]) >= num_frames - 1)
    if extra:
        raise InputError(
            f"{flow_dir}: {len(extra)} flow file(s) beyond the last pair of a {num_frames}-frame video, first: "
            f"{extra[0]}", fix="the flows were computed on a different number of frames; recompute them on the "
                                "frames that are scored")
    return files


def file_digest(paths: Sequence[Path]) -> str:
    """sha256 over the names and sha256 of ``paths``, in order: one provenance digest for a flow set."""
    outer = hashlib.sha256()
    for path in paths:
        outer.update(f"{path.name} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return outer.hexdigest()


def file_flow_pairs(flow_dir: str | Path, num_frames: int,
                    shape: tuple[int, int] | None = None) -> Iterator[FlowPair]:
    """Backend ``files``: the stored flows of pairs 0..T-2, read one pair at a time.

    Every file is checked to exist before the first is read. Each flow must be (H, W, 2) float32 of the
    frames' size ``shape`` = (H, W).
    """
    for fw_path, bw_path in flow_files(flow_dir, num_frames):
        yield FlowPair(check_flow(read_flow(fw_path), str(fw_path), shape),
                       check_flow(read_flow(bw_path), str(bw_path), shape))


def files_provenance(flow_dir: str | Path, num_frames: int) -> dict[str, Any]:
    """What a ``files`` result records about its flows: the folder and a digest of its files."""
    files = [p for pair in flow_files(flow_dir, num_frames) for p in pair]
    return {"backend": "files", "flow_dir": str(flow_dir), "files": len(files), "sha256": file_digest(files)}


# --------------------------------------------------------------------------------------------------
# Backend "dis": OpenCV DIS optical flow on the ground-truth frames

DIS_PRESET = "DISOPTICAL_FLOW_PRESET_MEDIUM"


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise TriptychError("the E_warp 'dis' flow backend needs OpenCV",
                            fix="pip install 'triptych[inpainting]' (it brings opencv-python-headless)") from exc
    return cv2


def _dis_instance() -> Any:
    cv2 = _cv2()
    return cv2.DISOpticalFlow_create(getattr(cv2, DIS_PRESET))


def _uint8_rgb(frame: np.ndarray, name: str) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise InputError(f"{name}: flow backends take uint8 (H, W, 3) RGB frames, got {frame.dtype} {frame.shape}",
                         fix="pass the ground-truth frames as read by triptych.media.read_rgb")
    return frame


def dis_flow(frame_a: np.ndarray, frame_b: np.ndarray) -> np.ndarray:
    """DIS flow F_(a->b) of two uint8 RGB frames: float32 (H, W, 2), channel 0 = dx.

    ``cv2.DISOpticalFlow_create(DISOPTICAL_FLOW_PRESET_MEDIUM)``, a fresh instance per call, run as
    ``calc(gray_a, gray_b, None)`` on ``cv2.cvtColor(RGB2GRAY)`` at native resolution. This is how the
    fixture's flows were made (fixtures/ewarp/tennis/README.md).
    """
    cv2 = _cv2()
    a, b = _uint8_rgb(frame_a, "frame a"), _uint8_rgb(frame_b, "frame b")
    if a.shape != b.shape:
        raise InputError(f"DIS flow of frames of different sizes {a.shape} and {b.shape}",
                         fix="all frames of a video must have one size")
    gray_a = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
    gray_b = cv2.cvtColor(np.ascontiguousarray(b), cv2.COLOR_RGB2GRAY)
    flow = _dis_instance().calc(gray_a, gray_b, None)
    return check_flow(np.asarray(flow), "DIS flow", a.shape[:2])


def dis_flow_pairs(gt_frames: Sequence[np.ndarray]) -> Iterator[FlowPair]:
    """Backend ``dis``: forward ``dis_flow(I_t, I_t+1)`` and backward ``dis_flow(I_t+1, I_t)``, t = 0..T-2."""
    for t in range(len(gt_frames) - 1):
        yield FlowPair(dis_flow(gt_frames[t], gt_frames[t + 1]), dis_flow(gt_frames[t + 1], gt_frames[t]))


def dis_provenance() -> dict[str, Any]:
    """The OpenCV version and the DIS parameters of the preset, read back from an instance."""
    cv2 = _cv2()
    dis = _dis_instance()
    params = {name: getattr(dis, f"get{name}")() for name in (
        "FinestScale", "PatchSize", "PatchStride", "GradientDescentIterations", "VariationalRefinementIterations",
        "VariationalRefinementAlpha", "VariationalRefinementDelta", "VariationalRefinementGamma",
        "UseMeanNormalization", "UseSpatialPropagation")}
    return {"backend": "dis", "opencv": cv2.__version__, "preset": DIS_PRESET,
            "params": {k: (bool(v) if isinstance(v, bool) else float(v) if isinstance(v, float) else int(v))
                       for k, v in params.items()},
            "input": "cv2.cvtColor(RGB2GRAY) of the uint8 ground-truth frames, native resolution, fresh "
                     "instance per call, calc(gray_a, gray_b, None)"}


# --------------------------------------------------------------------------------------------------
# Backend "raft": torchvision RAFT-Large
#
# Weights: registry entry ``raft_large_c_t_skht_v2`` (triptych/data/weights.yaml), torchvision's
# Raft_Large_Weights.C_T_SKHT_V2, a plain state dict loaded strictly with ``triptych.weights.load``
# (nothing is downloaded here; a missing file raises MissingWeightsError naming
# ``triptych weights fetch`` / ``triptych weights import``). Input: uint8 RGB / 255 mapped to [-1, 1]
# (the weights' own transforms), replicate-padded to a multiple of 8 on each side, split evenly
# (RAFT's InputPadder); the flow is cropped back. Frames need at least 128 px per side. 12 flow
# updates (torchvision's default); the last prediction is the flow. Runs on CUDA when available, else
# on the CPU (slow: seconds per pair).

RAFT_WEIGHTS = "raft_large_c_t_skht_v2"
RAFT_UPDATES = 12
RAFT_MULTIPLE = 8
RAFT_MIN_SIDE = 128  # torchvision RAFT's correlation pyramid needs feature maps of at least 16 x 16


def load_raft(weights: str = RAFT_WEIGHTS, trunk: Path | None = None) -> Any:
    """torchvision ``raft_large`` with the registered weights (or ``trunk``, a user's state dict of the same
    layout, ``measure --weights``), in eval mode on the CPU."""
    from torchvision.models.optical_flow import raft_large

    from triptych import weights as weights_registry

    # the registry's file is verified against its sha256 pin (MissingWeightsError if absent)
    state = weights_registry.load_trunk(weights, trunk)
    model = raft_large(weights=None, progress=False)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _raft_padding(height: int, width: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) replicate padding up to a multiple of 8, split evenly."""
    pad_h = (-height) % RAFT_MULTIPLE
    pad_w = (-width) % RAFT_MULTIPLE
    return pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2


def raft_flow(model: Any, frame_a: np.ndarray, frame_b: np.ndarray, device: str = "cpu") -> np.ndarray:
    """RAFT flow F_(a->b) of two uint8 RGB frames: float32 (H, W, 2), channel 0 = dx."""
    import torch
    import torch.nn.functional as functional

    a, b = _uint8_rgb(frame_a, "frame a"), _uint8_rgb(frame_b, "frame b")
    if a.shape != b.shape:
        raise InputError(f"RAFT flow of frames of different sizes {a.shape} and {b.shape}",
                         fix="all frames of a video must have one size")
    height, width = a.shape[:2]
    left, right, top, bottom = _raft_padding(height, width)
    if min(height + top + bottom, width + left + right) < RAFT_MIN_SIDE:
        raise InputError(f"RAFT needs frames of at least {RAFT_MIN_SIDE} px per side, got {width}x{height} (WxH)",
                         fix="use --variant dis for frames this small")

    def prepare(frame: np.ndarray) -> "torch.Tensor":
        tensor = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None].float().div(255.0)
        tensor = tensor.mul(2.0).sub(1.0)
        return functional.pad(tensor, (left, right, top, bottom), mode="replicate").to(device)

    with torch.inference_mode():
        flow = model(prepare(a), prepare(b), num_flow_updates=RAFT_UPDATES)[-1]
    flow = flow[0, :, top:top + height, left:left + width].permute(1, 2, 0).float().cpu().numpy()
    return check_flow(flow, "RAFT flow", (height, width))


def raft_flow_pairs(gt_frames: Sequence[np.ndarray], model: Any | None = None,
                    device: str | None = None, trunk: Path | None = None) -> Iterator[FlowPair]:
    """Backend ``raft``: forward and backward RAFT-Large flows of pairs t = 0..T-2 of the ground truth
    (``trunk``: a user's RAFT-Large file instead of the registry's)."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = (model if model is not None else load_raft(trunk=trunk)).to(device)
    for t in range(len(gt_frames) - 1):
        yield FlowPair(raft_flow(model, gt_frames[t], gt_frames[t + 1], device),
                       raft_flow(model, gt_frames[t + 1], gt_frames[t], device))


def raft_provenance(device: str | None = None, trunk: Path | None = None) -> dict[str, Any]:
    import torch
    import torchvision

    from triptych.weights import describe_user_file

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    weights = RAFT_WEIGHTS if trunk is None else f"user file {trunk} (sha256 {describe_user_file(trunk)['sha256']})"
    return {"backend": "raft", "weights": weights, "torchvision": torchvision.__version__,
            "torch": torch.__version__, "num_flow_updates": RAFT_UPDATES, "device": device,
            "input": "uint8 RGB / 255 -> [-1, 1], replicate-padded to a multiple of 8 (split evenly), "
                     "flow cropped back"}


# --------------------------------------------------------------------------------------------------
# Warping and occlusion


@dataclass(frozen=True)
class BilinearTaps:
    """Where and how much a flow samples: for every pixel x of an (H, W) grid, the flat indices of the four
    pixels around x + flow(x) (top-left, top-right, bottom-left, bottom-right, each clamped to the frame) and
    their bilinear weights, float32, each (H * W,). Computed once per flow, they warp any number of planes
    (``sample``): E_warp warps frame t+1 and the backward flow with the same forward flow."""

    index: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    weight: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    shape: tuple[int, int]


def bilinear_taps(flow: np.ndarray) -> BilinearTaps:
    """The Resample2d forward kernel's taps of ``flow`` (H, W, 2): pixel centres at integer coordinates
    (``grid_sample(align_corners=True)``); the sample position ``x + dx`` is float32 and the weights
    ``alpha = xf - floor(xf)`` come from the unclamped position; each tap index is clamped to [0, W-1] x
    [0, H-1], so samples outside the frame take the edge value (``padding_mode='border'``)."""
    height, width = flow.shape[:2]
    cv2 = _cv2()
    dx, dy = cv2.split(np.asarray(flow, dtype=np.float32))
    xf = dx + np.arange(width, dtype=np.float32)[None, :]
    yf = dy + np.arange(height, dtype=np.float32)[:, None]
    x0, y0 = np.floor(xf), np.floor(yf)
    alpha, beta = (xf - x0).ravel(), (yf - y0).ravel()
    x_left = np.clip(x0, 0, width - 1).astype(np.intp).ravel()
    x_right = np.clip(x0 + 1, 0, width - 1).astype(np.intp).ravel()
    y_top = np.clip(y0, 0, height - 1).astype(np.intp).ravel() * width
    y_bottom = np.clip(y0 + 1, 0, height - 1).astype(np.intp).ravel() * width
    one = np.float32(1.0)
    not_alpha, not_beta = one - alpha, one - beta
    return BilinearTaps((y_top + x_left, y_top + x_right, y_bottom + x_left, y_bottom + x_right),
                        (not_alpha * not_beta, alpha * not_beta, not_alpha * beta, alpha * beta), (height, width))


def sample(taps: BilinearTaps, image: np.ndarray) -> list[np.ndarray]:
    """The planes of ``image`` (H, W, C) sampled at the taps: C float32 (H, W) planes, not masked and not
    clipped; per pixel ``w_tl I_tl + w_tr I_tr + w_bl I_bl + w_br I_br``, summed in that order. Plane by
    plane: a gather from one contiguous plane is several times faster than from interleaved channels. The
    taps are clamped into the frame already (``bilinear_taps``), so ``take(mode="wrap")`` never wraps: it
    only skips numpy's bounds check, about a third of each gather's time."""
    cv2 = _cv2()
    planes = []
    for plane in cv2.split(np.asarray(image, dtype=np.float32)):
        flat = plane.ravel()
        out = flat.take(taps.index[0], mode="wrap")
        out *= taps.weight[0]
        for index, weight in zip(taps.index[1:], taps.weight[1:]):
            term = flat.take(index, mode="wrap")
            term *= weight
            out += term
        planes.append(out.reshape(taps.shape))
    return planes


def warp_backward(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` (H, W, C) at x + flow(x): float32 (H, W, C), the Resample2d forward kernel
    (``bilinear_taps``, then ``sample``): bilinear, edge-clamped taps, not masked, not clipped."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or flow.shape[:2] != image.shape[:2] or flow.ndim != 3 or flow.shape[2] != 2:
        raise InputError(f"cannot warp an image of shape {image.shape} with a flow of shape {flow.shape}",
                         fix="image (H, W, C) and flow (H, W, 2) must have the same H and W")
    return np.stack(sample(bilinear_taps(flow), image), axis=-1)


def flow_magnitude(flow: np.ndarray) -> np.ndarray:
    """Squared magnitude ``dx^2 + dy^2`` (no square root), float32 (utils.compute_flow_magnitude)."""
    return flow[..., 0] * flow[..., 0] + flow[..., 1] * flow[..., 1]


def flow_gradients(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forward differences ``(du_x, dv_x, du_y, dv_y)`` of a flow (utils.compute_flow_gradients).

    ``du_c[y, x] = F_c[y, x] - F_c[y, x+1]`` (0 in the last column) and ``dv_c[y, x] = F_c[y, x] -
    F_c[y+1, x]`` (0 in the last row). The differences are taken in float32 and stored as float64.
    """
    height, width = flow.shape[:2]
    out = []
    for c in (0, 1):
        comp = flow[..., c]
        du = np.zeros((height, width), np.float64)
        dv = np.zeros((height, width), np.float64)
        du[:, :-1] = comp[:, :-1] - comp[:, 1:]
        dv[:-1, :] = comp[:-1, :] - comp[1:, :]
        out += [du, dv]
    return out[0], out[1], out[2], out[3]


def forward_backward_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """mask1 of the occlusion rule, bool (H, W) in frame t's grid (utils.detect_occlusion).

    B_w = B(x + F(x)) is the backward flow sampled by the forward flow with ``warp_backward``, and
    mask1 = |F + B_w|^2 > 0.01 (|B_w|^2 + |F|^2) + 0.5, all in float32, with strict '>'.
    """
    return forward_backward_test(forward, warp_backward(backward, forward))


def forward_backward_test(forward: np.ndarray, backward_warped: np.ndarray) -> np.ndarray:
    """mask1 from F and the already warped B_w, (H, W, 2) (``forward_backward_mask``)."""
    return flow_magnitude(forward + backward_warped) > (
        FB_RELATIVE * (flow_magnitude(backward_warped) + flow_magnitude(forward)) + FB_ABSOLUTE)


def occlusion_from_warped(forward: np.ndarray, backward_warped: list[np.ndarray]) -> np.ndarray:
    """``occlusion_mask`` from F and the planes (x, y) of B_w = B(x + F(x))."""
    return forward_backward_test(forward, _cv2().merge(backward_warped)) | motion_boundary_mask(forward)


def motion_boundary_mask(flow: np.ndarray) -> np.ndarray:
    """mask2 of the occlusion rule, bool (H, W): du_x^2 + dv_x^2 + du_y^2 + dv_y^2 > 0.01 |F|^2 + 0.002.

    ``flow_gradients`` gives the left side in float64; the right side is float32, as in
    utils.detect_occlusion. The comparison is strict '>'.
    """
    du_x, dv_x, du_y, dv_y = flow_gradients(flow)
    sq = np.square
    return (sq(du_x) + sq(dv_x)) + (sq(du_y) + sq(dv_y)) > (MB_RELATIVE * flow_magnitude(flow) + MB_ABSOLUTE)


def occlusion_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Occluded pixels of pair t in frame t's grid, bool (H, W); True = occluded.

    ``forward`` = F_(t->t+1), ``backward`` = B = F_(t+1->t). This is what ``compute_flow_occlusion.py``
    computes with ``detect_occlusion(bw, fw)``, the arguments in the reverse order of the signature
    (docs/protocols/video_completion.md): occluded = ``forward_backward_mask(F, B)`` (B_w = B(x + F(x))) OR
    ``motion_boundary_mask(F)``, the motion boundary of the FORWARD flow. Passing the flows the other way
    round gives a mask in frame t+1's grid, one of the fixture's listed mistakes.
    """
    forward = check_flow(forward, "forward flow")
    backward = check_flow(backward, "backward flow", forward.shape[:2])
    return np.logical_or(forward_backward_mask(forward, backward), motion_boundary_mask(forward))
