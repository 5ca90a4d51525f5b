"""``triptych interpolate --method M [--weights FILE] [--t 0.5] I0 I1 --out OUT.png [--raw-npy OUT.npy]``

Runs a registered frame interpolation method on one pair of frames and writes the frame at time t.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer


def interpolate_pair(method: str, frame0: Path, frame1: Path, t: float = 0.5, weights: Path | None = None) -> Any:
    """The method's output for the pair (``frame0``, ``frame1``) at time ``t``: float32 (3, H, W), as the
    method returned it (not clamped, not rounded; AMT clamps inside its forward, as the reference does).

    The frames are read as uint8 RGB and converted by the frame interpolation task's own ``to_tensor``
    (``benchmarks/vfi.py``: AMT ``img2tensor``, uint8 / 255, float32), as ``triptych score`` converts them.
    ``weights`` replaces the method's registry weights with a file.
    """
    from triptych.benchmarks.vfi import to_tensor
    from triptych.errors import InputError
    from triptych.media import read_rgb
    from triptych.methods import build_method, check_output, method_for_task

    spec = method_for_task(method, "frame_interpolation", weights)
    if not 0.0 < t < 1.0:
        raise InputError(f"--t {t}: the output time must lie strictly between 0 (I0) and 1 (I1)",
                         fix="pass e.g. --t 0.5 for the midpoint or --t 0.125 for the first of 7 x8 frames")
    images = [read_rgb(path) for path in (frame0, frame1)]
    if images[0].shape != images[1].shape:
        (h0, w0), (h1, w1) = images[0].shape[:2], images[1].shape[:2]
        raise InputError(f"{frame1}: frame is {w1}x{h1}, but {frame0} is {w0}x{h0}",
                         fix="both input frames must have one size")
    f0, f1 = (to_tensor(image) for image in images)
    model = build_method(spec)
    return check_output(model.interpolate(f0, f1, t), tuple(f0.shape), method, f"{frame0.name}+{frame1.name}")


def check_output_paths(out: Path, raw_npy: Path | None = None) -> None:
    """Refuse output names that would be misread later, before any work is done."""
    from triptych.errors import InputError

    if out.suffix.lower() != ".png":
        raise InputError(f"--out {out}: the frame is written as PNG", fix="name the output file *.png")
    if raw_npy is not None and raw_npy.suffix.lower() != ".npy":
        raise InputError(f"--raw-npy {raw_npy}: expected a .npy path", fix="name the raw output file *.npy")


def write_outputs(frame: Any, out: Path, raw_npy: Path | None = None) -> None:
    """``out``: the frame clamped to [0, 1] and rounded to uint8 (``metrics.psnr.quantize_uint8``, half to
    even), as a PNG; ``raw_npy``: the unclamped float32 (3, H, W) array that ``measure --pred`` reads."""
    import numpy as np
    from PIL import Image

    from triptych.atomic import atomic_write
    from triptych.metrics.psnr import quantize_uint8

    check_output_paths(out, raw_npy)
    raw = np.ascontiguousarray(frame.numpy(), dtype=np.float32)
    image = quantize_uint8(raw.transpose(1, 2, 0))
    atomic_write(out, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))
    if raw_npy is not None:
        def save(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.save(handle, raw)

        atomic_write(raw_npy, save)


def register(app: typer.Typer) -> None:
    @app.command("interpolate")
    def interpolate_command(
        frame0: Path = typer.Argument(..., help="first frame I0 (8-bit RGB PNG or JPEG)"),
        frame1: Path = typer.Argument(..., help="second frame I1, same size"),
        method: str = typer.Option(..., "--method", help="a registered frame_interpolation method "
                                   "(see 'triptych list methods')"),
        out: Path = typer.Option(..., "--out", help="the interpolated frame, PNG (clamped, rounded to uint8)"),
        t: float = typer.Option(0.5, "--t", help="time of the output frame, 0 < t < 1 (0.5: the midpoint)"),
        weights: Optional[Path] = typer.Option(None, "--weights", help="checkpoint file replacing the "
                                               "method's registry weights (.safetensors or .pth)"),
        raw_npy: Optional[Path] = typer.Option(None, "--raw-npy", help="also write the method's float output, "
                                               "unclamped, as float32 (3, H, W) .npy"),
    ) -> None:
        """Interpolate the frame at time t between I0 and I1 with a registered method."""
        check_output_paths(out, raw_npy)
        frame = interpolate_pair(method, frame0, frame1, t, weights)
        write_outputs(frame, out, raw_npy)
        typer.echo(f"{out} written" + (f" (raw output: {raw_npy})" if raw_npy is not None else ""))
