"""Readers for frames, masks and predictions, and pairing of prediction and ground-truth folders.

Conventions (``conventions.md``): PNG and JPEG are read as uint8 RGB (H, W, 3); ``.npy`` predictions are
float32 CHW (or 1xCHW) in [0, 1], returned as float32 HWC and never clamped here (a metric variant decides
what to do with values outside [0, 1]). Anything else is an error that names the file and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from triptych.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy",)


def _open_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise InputError(f"{path}: file not found", fix="check the path, or regenerate the missing file")
    try:
        image = Image.open(path)
        image.load()  # PIL decodes lazily: force it, so a truncated file fails here, with its name
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"{path}: cannot decode image ({exc})",
                         fix="the file is corrupt or truncated; re-export or re-download it") from exc
    return image


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an 8-bit RGB image as uint8 (H, W, 3). Grayscale, alpha and 16-bit images are refused."""
    path = Path(path)
    image = _open_image(path)
    if image.mode != "RGB":
        fixes = {
            "L": "it is grayscale; save it as 8-bit RGB",
            "RGBA": "it has an alpha channel; flatten it to 8-bit RGB",
            "P": "it is a palette image; convert it to 8-bit RGB",
        }
        fix = fixes.get(image.mode, "convert it to 8-bit RGB (e.g. PIL: Image.open(p).convert('RGB'))")
        raise InputError(f"{path}: image mode is {image.mode!r}, expected 8-bit 'RGB'", fix=fix)
    return np.array(image, dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a hole mask as bool (H, W): any value above 0 is a hole. No dilation (that is the benchmark's)."""
    path = Path(path)
    image = _open_image(path)
    if image.mode not in ("L", "1", "P"):
        raise InputError(f"{path}: mask mode is {image.mode!r}, expected a single-channel 8-bit PNG",
                         fix="save the mask as grayscale (mode 'L'), 255 or any value above 0 = hole")
    return np.asarray(image) > 0


def load_npy(path: str | Path, what: str) -> np.ndarray:
    """``numpy.load`` without pickles; a missing or unreadable file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found", fix="check the path, or write the missing file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read .npy {what} ({exc})", fix="re-save it with numpy.save") from exc


def read_array_prediction(path: str | Path) -> np.ndarray:
    """Read a ``.npy`` prediction (float32 CHW or 1xCHW in [0, 1]) as float32 HWC, not clamped."""
    path = Path(path)
    array = load_npy(path, "prediction")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[0] != 3:
        raise InputError(f"{path}: .npy prediction has shape {array.shape}, expected (3, H, W) or (1, 3, H, W)",
                         fix="save predictions as float32 CHW in [0, 1]")
    if array.dtype != np.float32:
        raise InputError(f"{path}: .npy prediction has dtype {array.dtype}, expected float32",
                         fix="save with array.astype(numpy.float32)")
    if not np.isfinite(array).all():
        raise InputError(f"{path}: .npy prediction contains NaN or Inf", fix="fix the method's output")
    return np.ascontiguousarray(array.transpose(1, 2, 0))


def read_prediction(path: str | Path) -> np.ndarray:
    """uint8 HWC for images, float32 HWC in [0, 1] (unclamped) for ``.npy``."""
    path = Path(path)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        return read_array_prediction(path)
    return read_rgb(path)


@dataclass(frozen=True)
class Pair:
    """One prediction / ground-truth pair; ``sample_id`` is the relative POSIX path without suffix."""

    sample_id: str
    pred: Path
    gt: Path


def _index(root: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in suffixes:
            key = path.relative_to(root).with_suffix("").as_posix()
            if key in files:
                raise InputError(f"{root}: both {files[key].name} and {path.name} map to sample {key!r}",
                                 fix="keep one file per frame")
            files[key] = path
    return files


def pair_paths(pred: str | Path, gt: str | Path) -> list[Pair]:
    """Pair a prediction and a ground truth, each a file or a folder.

    Folders pair files by identical relative path (ignoring the suffix, so ``im2.npy`` pairs with
    ``im2.png``); a file missing on either side is an error that names it.
    """
    pred, gt = Path(pred), Path(gt)
    for side, path in (("--pred", pred), ("--gt", gt)):
        if not path.exists():
            raise InputError(f"{side} {path}: no such file or folder", fix="check the path")
    if pred.is_file() and gt.is_file():
        return [Pair(gt.stem, pred, gt)]
    if pred.is_file() != gt.is_file():
        raise InputError(f"--pred {pred} and --gt {gt} must both be files or both be folders")
    preds = _index(pred, IMAGE_SUFFIXES + ARRAY_SUFFIXES)
    gts = _index(gt, IMAGE_SUFFIXES)
    if not gts:
        raise InputError(f"--gt {gt}: no PNG or JPEG files found", fix="point --gt at the ground-truth frames")
    missing = sorted(set(gts) - set(preds))
    if missing:
        raise InputError(
            f"--pred {pred}: {len(missing)} prediction(s) missing, first: {gts[missing[0]].relative_to(gt)} "
            f"has no counterpart under {pred}",
            fix="write one prediction per ground-truth file, at the same relative path",
        )
    extra = sorted(set(preds) - set(gts))
    if extra:
        raise InputError(
            f"--pred {pred}: {len(extra)} prediction(s) without ground truth, first: "
            f"{preds[extra[0]].relative_to(pred)}",
            fix="remove it, or add the matching ground-truth file",
        )
    return [Pair(key, preds[key], gts[key]) for key in sorted(gts)]


def check_same_size(pred: np.ndarray, gt: np.ndarray, pair: Pair) -> None:
    if pred.shape[:2] != gt.shape[:2]:
        raise InputError(
            f"{pair.pred}: prediction is {pred.shape[1]}x{pred.shape[0]} but ground truth {pair.gt} is "
            f"{gt.shape[1]}x{gt.shape[0]} (WxH)",
            fix="predict at the ground truth's resolution (see the benchmark variant's resize and padding)",
        )
