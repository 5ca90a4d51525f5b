"""Text-image metrics (CLIP-T, HPSv2, PickScore): each generated image (``--pred``, a file or a folder)
against its prompt.

``--gt`` is the prompts file:

- ``.txt``: one prompt (the first non-empty line) for every image;
- ``.json``: an object mapping a sample id (the image's path relative to ``--pred``, without suffix) or
  any of its parent folders to a prompt; the most specific key wins. With the personalization layout
  ``<id_slug>/<NN>_<prompt_slug>/<k>.png`` one key per ``<id_slug>/<NN>_<prompt_slug>`` folder serves its
  four images. An image without a prompt is an error that names it.

One value per image, pooled mean; the prompt of each image is recorded in ``extras.prompts``.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from triptych.errors import InputError
from triptych.measure_kinds.identity_images import _images

OPTIONS: frozenset[str] = frozenset()


def read_prompts(path: Path) -> dict[str, str]:
    """The prompts file as {key: prompt}; a ``.txt`` file gives the single key ``""`` (every image)."""
    if not path.is_file():
        raise InputError(f"--gt {path}: no such prompts file", fix="pass a .txt prompt or a .json {sample: prompt} map")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".txt":
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            raise InputError(f"--gt {path}: the prompts file is empty", fix="write the prompt on its first line")
        return {"": lines[0]}
    if path.suffix.lower() != ".json":
        raise InputError(f"--gt {path}: prompts must be a .txt or .json file", fix="see 'triptych measure --help'")
    try:
        table = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--gt {path}: not valid JSON ({exc})", fix="write an object {sample_id: prompt}") from exc
    if not isinstance(table, dict) or not all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                              for k, v in table.items()):
        raise InputError(f"--gt {path}: expected an object of non-empty prompt strings", fix='e.g. {"newton/00_a": "a man"}')
    return {k.strip("/"): v for k, v in table.items()}


def prompt_for(sample_id: str, prompts: dict[str, str], where: Path) -> str:
    """The prompt of the most specific key among the sample id and its parent folders."""
    path = PurePosixPath(sample_id)
    for key in [path.as_posix(), *(p.as_posix() for p in path.parents if p.as_posix() != ".")] + [""]:
        if key in prompts:
            return prompts[key]
    raise InputError(f"--gt {where}: no prompt for image {sample_id!r}",
                     fix="add its sample id or one of its folders as a key")


def run(m: Any, score: Callable[..., float]) -> None:
    pred_root, prompts_path = Path(m.inputs.pred), Path(m.inputs.gt)
    prompts = read_prompts(prompts_path)
    used: dict[str, str] = {}
    images = _images(pred_root, "--pred")
    for image in images:
        sample_id = image.stem if pred_root.is_file() else image.relative_to(pred_root).with_suffix("").as_posix()
        used[sample_id] = prompt_for(sample_id, prompts, prompts_path)
    for image, (sample_id, prompt) in m.track(zip(images, used.items()), lambda item: item[1][0]):
        value = float(score(image, prompt, **m.params))
        m.aggregate.update(value)
        m.per_sample.append((sample_id, value))
    m.extras["prompts"] = used
