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


def architecture_state(folder: str, model: str, weights_file: str) -> dict[str, Any]:
    """The tensors (shapes only, on the meta device) of ``weights_file`` once transformers' class ``model``,
    built from the ``config.json`` in ``folder``, has loaded the checkpoint there strictly: no missing, no
    unexpected and no mis-shaped key, as transformers' own loader judges it (its key renamings of older
    checkpoints included; every shard of a sharded checkpoint is read). A checkpoint that does not fit is
    refused with the keys named. The weights manager pins an unpinned Hugging Face file only after this
    (``triptych.weights._check_trustworthy``)."""
    import torch
    import transformers

    root = Path(folder)
    missing = [name for name in ("config.json", *shard_siblings(weights_file)) if not (root / name).is_file()]
    if missing:
        raise TriptychError(f"{root}: {', '.join(missing)} not beside {weights_file}, so the checkpoint cannot be "
                            "checked against its architecture",
                            fix=f"put the checkpoint's {', '.join(missing)} (same Hugging Face repository) in {root}")
    _, info = getattr(transformers, model).from_pretrained(str(root), output_loading_info=True, dtype=torch.float16)
    problems = {kind: sorted(map(str, info.get(kind) or ())) for kind in
                ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")}
    if any(problems.values()):
        described = "; ".join(f"{len(v)} {k.replace('_', ' ')}: {', '.join(v[:4])}{' ...' if len(v) > 4 else ''}"
                              for k, v in problems.items() if v)
        raise TriptychError(f"{root / weights_file}: does not load strictly into {model}: {described}",
                            fix="import the checkpoint files of the registered Hugging Face repository")
    return _file_shapes(root / weights_file)


def _file_shapes(path: Path) -> dict[str, Any]:
    """Each tensor of a weights file as an empty meta tensor of its shape, without reading the data."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return {k: torch.empty(handle.get_slice(k).get_shape(), device="meta") for k in handle.keys()}
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return {k: torch.empty(v.shape, device="meta") for k, v in state.items()}


def torch_device(device: str) -> Any:
    """``cpu`` or ``cuda[:N]``; asking for CUDA without a GPU is an error, never a silent CPU run."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TriptychError(f"--device {device}: no CUDA device is available here", fix="use --device cpu")
    return torch.device(device)
