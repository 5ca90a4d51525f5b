"""The personalization protocol's generation job: any ``Generator`` x (IDs x prompts x images), resumable.

protocols.md section 3 / ``celeb-25id-40prompt``: 25 IDs x 40 prompts x 4 images, the reference photos
supplied by the user (never released, PhotoMaker#188). Images go to ``<out>/<id_slug>/<NN>_<prompt_slug>/<k>.png``
(conventions.md personalization layout, ``Protocol.image_path``), so the personalization benchmark scores
``--pred-dir <out>`` directly.

Resume: every image is written atomically (``triptych.atomic``) and an image already on disk is never
generated again. Each image's record (seed, seconds, prompt) is written, atomically too, just *before* its
image, so every image on disk has the record of the generation that made it; a kill between the two leaves
a record without an image, and that image is generated (and its record rewritten) on the next run.
Records, the timing table and the JSON live in ``<out>/.generation/``: hidden, because the personalization
benchmark refuses any non-hidden file of ``--pred-dir`` outside its layout.

Timing: the thesis reports personalization time, "seconds from receiving the ID condition to the final
personalized image": the wall time of one ``generate(references, prompt, seed)`` call (ID encoding, prompt
encoding, denoising, decoding, and the copy of the image to the CPU), one image per call. The table
``<out>/.generation/personalization_time.parquet`` has one results-schema row per image (metric ``personalization_time``,
level ``image``, unit ``s``); ``<out>/.generation/generation.json`` holds the settings, weights (sha256), seeds and the
per-image times.

Seeds: image ``k`` of prompt ``p`` of the ``i``-th protocol identity gets ``base_seed + (i * P + p) * K + k``
(P prompts, K images per prompt, protocol order), so a slice draws the same seeds as the full run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from triptych.atomic import atomic_write, atomic_write_text
from triptych.benchmarks.celeb_protocol import Prompt, Protocol, id_slug
from triptych.benchmarks.personalization import CLASS_WORDS, read_reference
from triptych.errors import InputError, TriptychError
from triptych.media import IMAGE_SUFFIXES

RECORDS_DIR = ".generation/records"
JOB_FILE = ".generation/job.json"
TABLE_FILE = ".generation/personalization_time.parquet"
SUMMARY_FILE = ".generation/generation.json"
METRIC = "personalization_time"


@dataclass(frozen=True)
class ImageRequest:
    """One image of the protocol: who, which prompt, which k, its seed and where it goes."""

    id_name: str
    class_word: str
    prompt: Prompt
    k: int
    seed: int
    path: str  # relative POSIX path, <id_slug>/<NN>_<prompt_slug>/<k>.png
    text: str  # the prompt with the class word filled in

    @property
    def sample_id(self) -> str:
        return self.path[:-len(".png")]


# --- slicing ----------------------------------------------------------------------------------------------------

def select_ids(protocol: Protocol, spec: str | None) -> tuple[str, ...]:
    """``None``: all; ``N``: the first N in protocol order; else comma-separated names or slugs."""
    if spec is None or not spec.strip():
        return protocol.ids
    spec = spec.strip()
    if spec.isdigit():
        n = int(spec)
        if not 1 <= n <= len(protocol.ids):
            raise InputError(f"--ids {n}: the protocol has {len(protocol.ids)} identities", fix=f"use 1..{len(protocol.ids)}")
        return protocol.ids[:n]
    by_key = {k: name for name in protocol.ids for k in (name.lower(), id_slug(name))}
    chosen, unknown = [], []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        name = by_key.get(item.lower()) or by_key.get(id_slug(item))
        (chosen if name else unknown).append(name or item)
    if unknown:
        raise InputError(f"--ids: not in protocol {protocol.name}: {', '.join(unknown)}",
                         fix=f"use a count or names such as {protocol.ids[0]!r} / {id_slug(protocol.ids[0])!r}")
    return tuple(dict.fromkeys(chosen))


def select_prompts(protocol: Protocol, spec: str | None) -> tuple[Prompt, ...]:
    """``None``: all; ``N``: the first N; else comma-separated indices or ranges (``0,3,10-12``)."""
    if spec is None or not spec.strip():
        return protocol.prompts
    spec = spec.strip()
    count = len(protocol.prompts)
    if spec.isdigit():
        n = int(spec)
        if not 1 <= n <= count:
            raise InputError(f"--prompts {n}: the protocol has {count} prompts", fix=f"use 1..{count}")
        return protocol.prompts[:n]
    indices: list[int] = []
    try:
        for item in (s.strip() for s in spec.split(",") if s.strip()):
            first, _, last = item.partition("-")
            indices.extend(range(int(first), int(last or first) + 1))
    except ValueError as exc:
        raise InputError(f"--prompts {spec!r}: expected a count or indices like 0,3,10-12",
                         fix="give prompt indices of the protocol file (0-based)") from exc
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise InputError(f"--prompts: indices {bad} outside 0..{count - 1}", fix=f"use 0..{count - 1}")
    return tuple(protocol.prompts[i] for i in dict.fromkeys(indices))


def plan(protocol: Protocol, ids: Sequence[str], prompts: Sequence[Prompt], images_per_prompt: int | None = None,
         base_seed: int = 0) -> list[ImageRequest]:
    """Every image to make, identities then prompts then k (protocol order), with its seed."""
    k_max = protocol.images_per_prompt if images_per_prompt is None else int(images_per_prompt)
    if not 1 <= k_max <= protocol.images_per_prompt:
        raise InputError(f"--images-per-prompt {k_max}: the protocol has {protocol.images_per_prompt} per prompt",
                         fix=f"use 1..{protocol.images_per_prompt}")
    n_prompts, per = len(protocol.prompts), protocol.images_per_prompt
    requests = []
    for name in ids:
        i = protocol.ids.index(name)
        word = protocol.class_words[name]
        for prompt in prompts:
            for k in range(k_max):
                seed = base_seed + (i * n_prompts + prompt.index) * per + k
                requests.append(ImageRequest(name, word, prompt, k, seed, protocol.image_path(name, prompt, k),
                                             protocol.fill(prompt, word)))
    return requests


# --- reference photos -------------------------------------------------------------------------------------------

def reference_folders(refs: Path, protocol: Protocol, ids: Sequence[str]) -> dict[str, list[Path]]:
    """Each identity's reference photos from ``refs``: a folder named ``<id_slug>`` (the class word then
    comes from the protocol) or ``<id_slug>_<classword>`` (the portrait-set convention of
    ``benchmarks/personalization.load_portraits``), whose class word must be the protocol's. Photos:
    non-hidden ``.png/.jpg/.jpeg`` files, sorted by name. Errors name the folder(s) looked for."""
    refs = Path(refs)
    if not refs.is_dir():
        raise InputError(f"--refs {refs}: folder not found", fix="point at a folder with one sub-folder per identity")
    folders = {p.name: p for p in refs.iterdir() if p.is_dir() and not p.name.startswith(".")}
    found: dict[str, list[Path]] = {}
    for name in ids:
        slug, word = id_slug(name), protocol.class_words[name]
        hits = [folders[n] for n in (slug, f"{slug}_{word}") if n in folders]
        others = [n for n in (f"{slug}_{w}" for w in CLASS_WORDS if w != word) if n in folders]
        if others:
            raise InputError(f"{refs / others[0]}: class word differs from the protocol's {word!r} for {name}",
                             fix=f"rename it to {slug}_{word} (or {slug})")
        if not hits:
            raise InputError(f"{refs}: no reference folder for {name} (looked for {slug}/ and {slug}_{word}/)",
                             fix=f"put {name}'s reference photos (4 in the protocol) in {refs / slug}/")
        if len(hits) > 1:
            raise InputError(f"{refs}: both {slug}/ and {slug}_{word}/ exist for {name}", fix="keep one of them")
        images = sorted(p for p in hits[0].iterdir()
                        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InputError(f"{hits[0]}: no PNG or JPEG reference photos", fix=f"add {name}'s reference photos")
        found[name] = images
    return found


# --- the job ----------------------------------------------------------------------------------------------------

def _write_png(path: Path, image: torch.Tensor) -> None:
    """float [0, 1] (3, H, W) -> 8-bit RGB PNG, rounded (the scorer reads PNGs as uint8)."""
    from PIL import Image

    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


def _checked(images: Any, request: ImageRequest, method: str) -> torch.Tensor:
    if not isinstance(images, (list, tuple)) or len(images) != 1:
        raise TriptychError(f"method {method!r} returned {type(images).__name__} of "
                            f"{len(images) if isinstance(images, (list, tuple)) else '?'} images for {request.path}; "
                            "the job asks one image per call", fix="return a list with one (3, H, W) tensor")
    image = images[0]
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3 or not torch.isfinite(image).all():
        raise TriptychError(f"method {method!r} returned no finite (3, H, W) image for {request.path}",
                            fix="see triptych.methods.Generator")
    return image.detach().to("cpu", torch.float32)


def _job_meta(out: Path, method: str) -> dict[str, Any]:
    """The run id of this output folder, made once and kept (so resumed runs add to the same table)."""
    from triptych.results import new_run_id

    path = out / JOB_FILE
    if path.is_file():
        meta = json.loads(path.read_text(encoding="utf-8"))
        if meta.get("method") != method:
            raise InputError(f"{out}: holds images of method {meta.get('method')!r}, not {method!r}",
                             fix="use another --out folder per method")
        return meta
    meta = {"run_id": new_run_id(f"generate-{method}"), "method": method}
    atomic_write_text(path, json.dumps(meta, indent=2))
    return meta


@dataclass
class JobResult:
    generated: int
    skipped: int
    seconds: list[float]  # of the images generated by this call
    table: Path
    summary: Path


def run_job(generator: Any, requests: Sequence[ImageRequest], references: Mapping[str, Sequence[Path]], out: Path,
            *, method: str, method_version: str, protocol: Protocol, describe: Mapping[str, Any] | None = None,
            progress: bool = True, clock: Callable[[], float] = time.perf_counter) -> JobResult:
    """Generate every missing image of ``requests`` into ``out``, then rewrite the timing table and the
    JSON over all images of ``requests`` present. ``generator`` follows ``triptych.methods.Generator``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    out = Path(out)
    meta = _job_meta(out, method)
    loaded: dict[str, list[torch.Tensor]] = {}
    generated, skipped, seconds = 0, 0, []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(f"{method}", total=len(requests))
        for request in requests:
            target = out / request.path
            if target.is_file():
                skipped += 1
                bar.advance(task)
                continue
            if request.id_name not in loaded:
                loaded = {request.id_name: [read_reference(p) for p in references[request.id_name]]}
            start = clock()
            image = _checked(generator.generate(loaded[request.id_name], request.text, request.seed), request, method)
            elapsed = clock() - start
            record = {"path": request.path, "id": request.id_name, "class_word": request.class_word,
                      "prompt_index": request.prompt.index, "prompt": request.text, "k": request.k,
                      "seed": request.seed, "seconds": elapsed, "size": list(image.shape[1:]),
                      "references": [p.name for p in references[request.id_name]]}
            atomic_write_text(out / RECORDS_DIR / f"{request.sample_id}.json", json.dumps(record, indent=1))
            _write_png(target, image)
            generated += 1
            seconds.append(elapsed)
            bar.update(task, advance=1, description=f"{method} {elapsed:.2f} s/img")
    table, summary = write_outputs(out, requests, meta["run_id"], method, method_version, protocol, describe or {})
    return JobResult(generated, skipped, seconds, table, summary)


def write_outputs(out: Path, requests: Sequence[ImageRequest], run_id: str, method: str, method_version: str,
                  protocol: Protocol, describe: Mapping[str, Any]) -> tuple[Path, Path]:
    """The results-schema timing table and ``generation.json`` over every image of ``requests`` on disk."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from triptych.results import COLUMNS, SCHEMA, json_safe, utc_now, validate_rows

    records, missing = [], []
    for request in requests:
        record_path = out / RECORDS_DIR / f"{request.sample_id}.json"
        if (out / request.path).is_file() and record_path.is_file():
            records.append(json.loads(record_path.read_text(encoding="utf-8")))
        else:
            missing.append(request.path)
    bad = [r["path"] for r in records if not math.isfinite(float(r["seconds"]))]
    if bad:
        raise TriptychError(f"non-finite generation time in records of {bad[:3]}", fix="delete those images and rerun")
    rows = [{"run_id": run_id, "task": "personalization", "benchmark": protocol.name, "split": "test",
             "benchmark_variant": "", "method": method, "method_version": method_version,
             "sample_id": r["path"][:-len(".png")], "level": "image", "metric": METRIC, "metric_variant": "",
             "metric_version": 1, "value": float(r["seconds"]), "unit": "s"} for r in records]
    frame = validate_rows(pd.DataFrame(rows, columns=list(COLUMNS)), str(out / TABLE_FILE))
    table = pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False)
    table_path = atomic_write(out / TABLE_FILE, lambda tmp: pq.write_table(table, str(tmp)))
    times = [float(r["seconds"]) for r in records]
    summary = {
        "run_id": run_id, "protocol": protocol.name, "method": method, "method_version": method_version,
        "generator": dict(describe), "written_utc": utc_now(),
        "images_expected": len(requests), "images_present": len(records), "missing": missing,
        "seconds_per_image": {"mean": sum(times) / len(times) if times else None,
                              "min": min(times, default=None), "max": max(times, default=None)},
        "images": records,
    }
    summary_path = atomic_write_text(out / SUMMARY_FILE, json.dumps(json_safe(summary), indent=1))
    return table_path, summary_path
