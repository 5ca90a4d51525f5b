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

    The frames are the video completion task's own (``benchmarks/vos.py``: ``VideoCompletion.complete``) at
    the frames' size with ``dilation``: the prediction truncated to uint8 and composited with the (dilated)
    mask, exactly what ``triptych score`` composites (docs/protocols/video_completion.md).
    """
    from PIL import Image

    from triptych.atomic import atomic_write
    from triptych.benchmarks.vos import VideoCompletion, Video
    from triptych.errors import InputError
    from triptych.folders import visible_entries
    from triptych.media import IMAGE_SUFFIXES, image_size
    from triptych.methods import build_method, method_for_task

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
    mask_paths = [masks / f"{p.stem}.png" for p in frame_paths]
    missing = [p for p, m in zip(frame_paths, mask_paths) if not m.is_file()]
    if missing:
        raise InputError(f"{masks / (missing[0].stem + '.png')}: mask missing for frame {missing[0].name} "
                         f"({len(missing)} of {len(frame_paths)} frames have no mask)",
                         fix="give every frame a mask PNG with the frame's name in --masks")
    size = image_size(frame_paths[0])
    for path, mask_path in zip(frame_paths, mask_paths):
        width, height = image_size(path)
        if (width, height) != size:
            raise InputError(f"{path}: frame is {width}x{height}, the first frame {frame_paths[0].name} is "
                             f"{size[0]}x{size[1]}", fix="all frames of a video must have one size")
        mask_width, mask_height = image_size(mask_path)
        if (mask_width, mask_height) != size:
            raise InputError(f"{mask_path}: mask is {mask_width}x{mask_height}, its frame {path.name} is "
                             f"{width}x{height}", fix="resize the mask (NEAREST) to its frame's size")

    task = VideoCompletion({"size": size, "mask_dilation": dilation}, scored=False)
    video = Video(str(frames), tuple(frame_paths), tuple(mask_paths))
    written = []
    for path, frame in zip(frame_paths, task.complete(build_method(spec), video)):
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
