"""The one reader of each kind of input, and pairing of prediction and ground-truth folders.

Every command, benchmark loader and pipeline reads frames, masks and ``.npy`` arrays here, so one file
means one thing everywhere (the rules are stated in the README, "Measure your own frames"):

- Frames (``read_rgb``): PNG or JPEG whose content matches its suffix (``.png``; ``.jpg`` / ``.jpeg``;
  case-insensitive), 8-bit RGB, no EXIF rotation, at most ``MAX_PIXELS`` pixels; returned as uint8
  (H, W, 3). Grayscale, alpha, palette, CMYK, 16-bit of any channel count (48-bit RGB included), an EXIF
  orientation other than 1, and e.g. WebP bytes named ``.png`` are refused with the fix, never converted.
- Masks (``read_mask``): the same container rules; modes ``1``, ``L``, ``P`` and ``RGB`` are converted with
  PIL's ``convert("L")`` (the palette's or the colour's luminance) and any value above 0 is hole: E2FGVI's
  reading, used by ``measure``, ``score`` and ``inpaint`` alike. Other modes (alpha, 16-bit, CMYK) are refused.
- ``.npy`` predictions (``read_array_prediction``): a real ``.npy`` (not an ``.npz`` or pickle), float32 or
  float64, CHW or 1xCHW, finite, every value in [-0.01, 1.01] (AMT's unclamped outputs overshoot [0, 1]
  slightly); returned as float32 HWC (the protocol's precision), never clamped (the metric variant
  decides). Values on another scale are refused with a guess of the scale.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from triptych.errors import InputError
from triptych.folders import visible_files

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ARRAY_SUFFIXES = (".npy",)
# MPO: a camera JPEG with extra pictures appended (PIL reads the primary one, as any JPEG reader does)
FORMAT_SUFFIXES = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "MPO": (".jpg", ".jpeg")}
MAX_PIXELS = 8192 * 8192  # 67,108,864: larger images are refused before they are decoded
PREDICTION_RANGE = (-0.01, 1.01)
MASK_MODES = ("1", "L", "P", "RGB")
_EXIF_ORIENTATION = 0x0112
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_TO_PNG = "convert it to PNG (e.g. PIL: Image.open(p).convert('RGB').save('frame.png'))"


def _png_bit_depth(path: Path) -> int:
    """Bits per sample from the PNG header (IHDR): PIL reads a 48-bit RGB PNG as 8-bit RGB silently."""
    with open(path, "rb") as handle:
        header = handle.read(26)
    return header[24] if len(header) >= 26 else 8


def _open_header(path: Path) -> Image.Image:
    """Open an image (header only) after the checks every image passes: an existing file, PNG or JPEG
    content matching its suffix, at most ``MAX_PIXELS`` pixels."""
    if not path.is_file():
        what = "a folder, not an image file" if path.is_dir() else "file not found"
        raise InputError(f"{path}: {what}", fix="check the path, or regenerate the missing file")
    too_large = "check the file (a corrupt header can claim a huge size); downscale or crop it"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(f"{path}: image is larger than the {MAX_PIXELS:,} pixels triptych reads ({exc})",
                         fix=too_large) from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"{path}: cannot decode image ({exc})",
                         fix="the file is corrupt or truncated; re-export or re-download it") from exc
    fmt, suffix = image.format or "unknown", path.suffix.lower()
    if suffix not in FORMAT_SUFFIXES.get(fmt, ()):
        image.close()
        fix = (f"rename it so its suffix says what it is ({FORMAT_SUFFIXES[fmt][0]})" if fmt in FORMAT_SUFFIXES
               else f"triptych reads PNG (.png) and JPEG (.jpg, .jpeg), checked by content: {_TO_PNG}")
        raise InputError(f"{path}: the file holds {fmt} data but is named {path.suffix or 'without a suffix'}",
                         fix=fix)
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise InputError(f"{path}: image is {width}x{height} = {width * height:,} pixels, above the "
                         f"{MAX_PIXELS:,} pixels triptych reads", fix=too_large)
    return image


def _open_image(path: Path) -> Image.Image:
    """``_open_header``, then 8 bits per sample, decode, and no EXIF rotation."""
    image = _open_header(path)
    try:
        _check_decoded(image, path)
    except InputError:
        image.close()
        raise
    return image


def _check_decoded(image: Image.Image, path: Path) -> None:
    if image.format == "PNG" and _png_bit_depth(path) == 16 or image.mode.startswith("I;16"):
        raise InputError(f"{path}: 16-bit image (mode {image.mode!r}); triptych reads 8-bit images only",
                         fix="convert it to 8 bits per channel yourself (e.g. value // 257), so no precision is "
                             "dropped unnoticed")
    try:
        image.load()  # PIL decodes lazily: force it, so a truncated file fails here, with its name
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError, struct.error) as exc:
        raise InputError(f"{path}: cannot decode image ({exc})",
                         fix="the file is corrupt or truncated; re-export or re-download it") from exc
    if orientation != 1:
        raise InputError(f"{path}: EXIF orientation {orientation} (the image is stored rotated or mirrored)",
                         fix="apply the rotation and save without it, e.g. PIL: ImageOps.exif_transpose(image)"
                             ".save(...)")


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file, after the header checks of every image (not decoded)."""
    with _open_header(Path(path)) as image:
        return image.size


_FRAME_FIXES = {
    "L": "it is grayscale; save it as 8-bit RGB",
    "LA": "it is grayscale with an alpha channel; flatten it to 8-bit RGB",
    "RGBA": "it has an alpha channel; flatten it to 8-bit RGB",
    "P": "it is a palette image; convert it to 8-bit RGB",
    "PA": "it is a palette image with an alpha channel; flatten it to 8-bit RGB",
    "CMYK": "it is CMYK (print colours); convert it to sRGB with a colour-managed tool (e.g. ImageMagick "
            "'-colorspace sRGB') and save it as 8-bit RGB",
}


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an 8-bit RGB frame as uint8 (H, W, 3); anything else is refused (module docstring)."""
    path = Path(path)
    image = _open_image(path)
    mode = "PA" if image.mode == "P" and "transparency" in image.info else image.mode
    if mode != "RGB":
        fix = _FRAME_FIXES.get(mode, "convert it to 8-bit RGB (e.g. PIL: Image.open(p).convert('RGB'))")
        raise InputError(f"{path}: image mode is {mode!r}, expected 8-bit 'RGB'", fix=fix)
    return np.array(image, dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)


def read_mask(path: str | Path) -> np.ndarray:
    """Read a hole mask as bool (H, W): ``convert("L") > 0`` for modes 1, L, P and RGB (module docstring).
    No resizing or dilation (that is the benchmark variant's)."""
    path = Path(path)
    image = _open_image(path)
    if image.mode not in MASK_MODES:
        raise InputError(f"{path}: mask mode is {image.mode!r}; masks are read in modes {', '.join(MASK_MODES)}",
                         fix="save the mask as 8-bit grayscale (mode 'L'), 0 = kept, any value above 0 = hole")
    return np.asarray(image.convert("L")) > 0


def load_npy(path: str | Path, what: str) -> np.ndarray:
    """One array from a real ``.npy`` file (checked by content: not an ``.npz`` archive, no pickles)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found", fix="check the path, or write the missing file")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic.startswith(_ZIP_MAGIC):
        raise InputError(f"{path}: an .npz archive (several arrays in a zip) named .npy",
                         fix="save the one array with numpy.save(path, array), not numpy.savez")
    if magic != _NPY_MAGIC:
        raise InputError(f"{path}: not a .npy file (it does not start with the NumPy header)",
                         fix="save the array with numpy.save")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read .npy {what} ({exc})", fix="re-save it with numpy.save") from exc


def _scale_guess(low: float, high: float) -> str:
    if low >= PREDICTION_RANGE[0] and high <= 255.5:
        return "looks like 0-255: divide by 255"
    if low >= -1.01 and high <= PREDICTION_RANGE[1]:
        return "looks like [-1, 1]: map it with (x + 1) / 2"
    return "save values in [0, 1]"


def read_array_prediction(path: str | Path) -> np.ndarray:
    """Read a ``.npy`` prediction (float32/float64 CHW or 1xCHW in [0, 1]) as float32 HWC, not clamped."""
    path = Path(path)
    array = load_npy(path, "prediction")
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[0] != 3:
        raise InputError(f"{path}: .npy prediction has shape {array.shape}, expected (3, H, W) or (1, 3, H, W)",
                         fix="save predictions as float32 CHW in [0, 1]")
    if array.dtype not in (np.float32, np.float64):
        raise InputError(f"{path}: .npy prediction has dtype {array.dtype}, expected float32 or float64",
                         fix="save floats in [0, 1] (e.g. array.astype(numpy.float32) / 255 for 8-bit values)")
    if not np.isfinite(array).all():
        raise InputError(f"{path}: .npy prediction contains NaN or Inf", fix="fix the method's output")
    low, high = float(array.min()), float(array.max())
    if low < PREDICTION_RANGE[0] or high > PREDICTION_RANGE[1]:
        raise InputError(f"{path}: .npy prediction values span [{low:g}, {high:g}], outside "
                         f"[{PREDICTION_RANGE[0]}, {PREDICTION_RANGE[1]}]; the scale {_scale_guess(low, high)}",
                         fix="save predictions on the [0, 1] scale (float32 CHW); nothing is rescaled or clamped "
                             "for you")
    return np.ascontiguousarray(array.transpose(1, 2, 0), dtype=np.float32)


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
    """Relative stem -> file of every visible file under ``root``; a file of another kind is refused (never
    skipped), as are two files of one stem."""
    files: dict[str, Path] = {}
    for path in visible_files(root):
        if path.suffix.lower() not in suffixes:
            raise InputError(f"{path}: not a {', '.join(suffixes)} file, inside {root}",
                             fix="move it out of the folder (hidden files such as .DS_Store are ignored)")
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
