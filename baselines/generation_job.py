"""The personalization protocol's generation job: any ``Generator`` x (IDs x prompts x images), resumable.

docs/protocols/personalization.md / ``celeb-25id-40prompt``: 25 IDs x 40 prompts x 4 images, the reference photos
supplied by the user (never released, PhotoMaker#188). Images go to ``<out>/<id_slug>/<NN>_<prompt_slug>/<k>.png``
(docs/conventions.md personalization layout, ``Protocol.image_path``), so the personalization benchmark scores
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

The images to make are a ``celeb_protocol.GenerationPlan`` (``make_plan``), the plan of the personalization benchmark
and of ``triptych personalization init``: the same reference-folder lookup, slices and seeds. Seeds: image
``k`` of prompt ``p`` of identity ``i`` gets ``celeb_protocol.image_seed``, ``base + (i*P + p)*K + k`` (P prompts,
K images per prompt of the protocol), so a slice draws the seeds of the full run, and ``triptych score
--method`` calls the generator with the same seed for the same image; ``generation.json`` records the rule
(``seeds``) and every image's seed.
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
from triptych.benchmarks.celeb_protocol import CelebImage, Protocol
from triptych.benchmarks.personalization import read_reference
from triptych.errors import InputError, TriptychError

RECORDS_DIR = ".generation/records"
JOB_FILE = ".generation/job.json"
TABLE_FILE = ".generation/personalization_time.parquet"
SUMMARY_FILE = ".generation/generation.json"
METRIC = "personalization_time"


# --- the job ----------------------------------------------------------------------------------------------------

def _write_png(path: Path, image: torch.Tensor) -> None:
    """float [0, 1] (3, H, W) -> 8-bit RGB PNG, rounded (the scorer reads PNGs as uint8)."""
    from PIL import Image

    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


def _checked(images: Any, request: CelebImage, method: str) -> torch.Tensor:
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


def run_job(generator: Any, requests: Sequence[CelebImage], out: Path, *, method: str, method_version: str,
            protocol: Protocol, seeds: Mapping[str, Any], describe: Mapping[str, Any] | None = None,
            progress: bool = True, clock: Callable[[], float] = time.perf_counter) -> JobResult:
    """Generate every missing image of ``requests`` (``GenerationPlan.images()``: each with the references
    the method gets and its seed) into ``out``, then rewrite the timing table and the JSON over all images of
    ``requests`` present; ``seeds`` is ``GenerationPlan.seeds()``. ``generator`` follows
    ``triptych.methods.Generator``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    out = Path(out)
    meta = _job_meta(out, method)
    loaded: dict[tuple[Path, ...], list[torch.Tensor]] = {}
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
            if request.given not in loaded:
                loaded = {request.given: [read_reference(p) for p in request.given]}
            start = clock()
            image = _checked(generator.generate(loaded[request.given], request.prompt, request.seed), request, method)
            elapsed = clock() - start
            record = {"path": request.path, "id": request.name, "class_word": request.class_word,
                      "prompt_index": request.prompt_index, "prompt": request.prompt, "k": request.k,
                      "seed": request.seed, "seconds": elapsed, "size": list(image.shape[1:]),
                      "references": [p.name for p in request.given]}
            atomic_write_text(out / RECORDS_DIR / f"{request.sample_id}.json", json.dumps(record, indent=1))
            _write_png(target, image)
            generated += 1
            seconds.append(elapsed)
            bar.update(task, advance=1, description=f"{method} {elapsed:.2f} s/img")
    table, summary = write_outputs(out, requests, meta["run_id"], method, method_version, protocol, seeds,
                                   describe or {})
    return JobResult(generated, skipped, seconds, table, summary)


def write_outputs(out: Path, requests: Sequence[CelebImage], run_id: str, method: str, method_version: str,
                  protocol: Protocol, seeds: Mapping[str, Any], describe: Mapping[str, Any]) -> tuple[Path, Path]:
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
        "generator": dict(describe), "seeds": dict(seeds), "written_utc": utc_now(),
        "images_expected": len(requests), "images_present": len(records), "missing": missing,
        "seconds_per_image": {"mean": sum(times) / len(times) if times else None,
                              "min": min(times, default=None), "max": max(times, default=None)},
        "images": records,
    }
    summary_path = atomic_write_text(out / SUMMARY_FILE, json.dumps(json_safe(summary), indent=1))
    return table_path, summary_path
