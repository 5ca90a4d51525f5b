"""Hugging Face models through the weights registry: the registered weights file and its companions.

A transformers checkpoint is a folder (``config.json``, the weights, the processor's files). The weights
registry pins and checks the one large file (``triptych.weights``); the model is then loaded with
``from_pretrained`` from that file's cache folder, ``<TRIPTYCH_HOME>/weights/<name>/``, where the small
companion files of the same Hugging Face repository sit beside it. Nothing is downloaded at run time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from triptych.errors import TriptychError


def shard_siblings(filename: str) -> list[str]:
    """The other shards and the index of a sharded checkpoint named by its first shard.

    >>> shard_siblings("model-00001-of-00002.safetensors")
    ['model-00002-of-00002.safetensors', 'model.safetensors.index.json']
    >>> shard_siblings("model.safetensors")
    []
    """
    match = re.fullmatch(r"(.+)-00001-of-(\d{5})\.(\w+)", filename)
    if not match:
        return []
    stem, total, suffix = match.group(1), int(match.group(2)), match.group(3)
    return [f"{stem}-{i:05d}-of-{total:05d}.{suffix}" for i in range(2, total + 1)] + [f"{stem}.{suffix}.index.json"]


def model_folder(name: str, companions: tuple[str, ...]) -> tuple[Path, dict[str, Any]]:
    """The verified folder of registry entry ``name`` and its provenance record; a missing companion file
    (or further shard of a sharded checkpoint) is named with the command that fetches it."""
    from triptych import weights

    record = weights.describe(name)
    folder = Path(record["path"]).parent
    needed = list(companions) + shard_siblings(Path(record["path"]).name)
    missing = [c for c in needed if not (folder / c).is_file()]
    if missing:
        repo = weights.get_spec(name).urls[0].split("/resolve/")[0]
        raise TriptychError(f"{folder}: the model {name!r} needs {', '.join(missing)} beside its weights",
                            fix=f"download them from {repo} into {folder} (e.g. huggingface-cli download "
                                f"{repo.split('huggingface.co/')[-1]} {' '.join(missing)} --local-dir {folder})")
    return folder, record


def torch_device(device: str) -> Any:
    """``cpu`` or ``cuda[:N]``; asking for CUDA without a GPU is an error, never a silent CPU run."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TriptychError(f"--device {device}: no CUDA device is available here", fix="use --device cpu")
    return torch.device(device)
