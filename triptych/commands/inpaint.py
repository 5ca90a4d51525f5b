"""``triptych inpaint --method M --frames DIR --masks DIR --out DIR [--dilation N] [--weights FILE]``

Runs a registered video completion method on one folder of frames and writes the completed frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def inpaint_folder(method: str, frames: Path, masks: Path, out: Path, dilation: int = 0,
                   weights: Path | None = None) -> list[Path]:
    """Run ``method`` on the video in ``frames`` with the same-named masks in ``masks``; write the
    completed frames as ``out/<frame stem>.png`` and return their paths. ``weights`` replaces the method's
    registered checkpoint with a user file (methods whose factory takes ``weights``).

    The written frame is ``uint8(pred) * mask + frame * (1 - mask)`` with the method's output truncated
    to uint8 (clipped first) and the (dilated) mask: exactly what ``triptych score`` composites.
    """
    import cv2
    import numpy as np
    import torch
    from PIL import Image

    from triptych.atomic import atomic_write
    from triptych.errors import InputError
    from triptych.folders import visible_entries
    from triptych.media import IMAGE_SUFFIXES, read_mask, read_rgb
    from triptych.methods import build_method, check_output, method_for_task

    spec = method_for_task(method, "video_inpainting", weights)
    if dilation < 0:
        raise InputError(f"--dilation {dilation}: must be 0 or more", fix="pass the number of 3x3-cross dilations")
    if not frames.is_dir():
        raise InputError(f"--frames {frames}: no such folder", fix="pass the folder of the video's frames")
    if not masks.is_dir():
        raise InputError(f"--masks {masks}: no such folder", fix="pass the folder of the video's masks")
    frame_paths = [p for p in visible_entries(frames) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not frame_paths:
        raise InputError(f"--frames {frames}: no PNG or JPEG frames", fix="check the folder")
    stems = [p.stem for p in frame_paths]
    if len(set(stems)) != len(stems):
        duplicate = next(s for s in stems if stems.count(s) > 1)
        raise InputError(f"--frames {frames}: two frames share the name {duplicate!r}",
                         fix="keep one file per frame name")
    missing = [p for p in frame_paths if not (masks / f"{p.stem}.png").is_file()]
    if missing:
        raise InputError(f"{masks / (missing[0].stem + '.png')}: mask missing for frame {missing[0].name} "
                         f"({len(missing)} of {len(frame_paths)} frames have no mask)",
                         fix="give every frame a mask PNG with the frame's name in --masks")

    images, holes = [], []
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for path in frame_paths:
        image = read_rgb(path)
        if images and image.shape != images[0].shape:
            raise InputError(f"{path}: frame is {image.shape[1]}x{image.shape[0]}, the first frame "
                             f"{frame_paths[0].name} is {images[0].shape[1]}x{images[0].shape[0]}",
                             fix="all frames of a video must have one size")
        mask_path = masks / f"{path.stem}.png"
        hole = read_mask(mask_path).astype(np.uint8)
        if hole.shape != image.shape[:2]:
            raise InputError(f"{mask_path}: mask is {hole.shape[1]}x{hole.shape[0]}, its frame {path.name} is "
                             f"{image.shape[1]}x{image.shape[0]}", fix="resize the mask (NEAREST) to its frame's size")
        if dilation:
            hole = cv2.dilate(hole, kernel, iterations=dilation)
        images.append(image)
        holes.append(hole)
    video = np.stack(images)
    hole = np.stack(holes)
    x = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255.0
    m = torch.from_numpy(hole)[:, None].float()
    model = build_method(spec)
    pred = check_output(model.inpaint(x, m), tuple(x.shape), method, str(frames))
    # as benchmarks/vos.py (E2FGVI evaluate.py): clip, truncate to uint8, composite with the mask
    pred = np.clip(pred.permute(0, 2, 3, 1).numpy() * 255.0, 0, 255).astype(np.uint8)
    completed = pred * hole[..., None] + video * (1 - hole[..., None])
    written = []
    for path, frame in zip(frame_paths, completed):
        target = out / f"{path.stem}.png"
        atomic_write(target, lambda tmp, f=frame: Image.fromarray(f).save(tmp, format="PNG"))
        written.append(target)
    return written


def register(app: typer.Typer) -> None:
    @app.command("inpaint")
    def inpaint_command(
        method: str = typer.Option(..., "--method", help="a registered video_inpainting method "
                                   "(see 'triptych list methods')"),
        frames: Path = typer.Option(..., "--frames", help="folder of 8-bit RGB frames (PNG or JPEG) of one "
                                    "video, in sorted file-name order"),
        masks: Path = typer.Option(..., "--masks", help="folder of mask PNGs named like the frames "
                                   "(00007.jpg -> 00007.png), same size; any value above 0 is hole"),
        out: Path = typer.Option(..., "--out", help="folder for the completed frames (<frame stem>.png)"),
        dilation: int = typer.Option(0, "--dilation", help="dilate each mask with a 3x3 cross N times, as the "
                                     "E2FGVI benchmark variant does with N = 4 (default 0: the masks as given)"),
        weights: Optional[Path] = typer.Option(None, "--weights", help="checkpoint file to use instead of the "
                                               "method's registered weights (e.g. E2FGVI-CVPR22.pth)"),
    ) -> None:
        """Complete a video with a registered method; writes the composited frames to OUT."""
        written = inpaint_folder(method, frames, masks, out, dilation, weights)
        typer.echo(f"{len(written)} frames written to {out}")
