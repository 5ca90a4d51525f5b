"""``celeb-25id-40prompt``: the 25-ID x 40-prompt personalization protocol on the user's reference photos.

docs/protocols/personalization.md: PhotoMaker's evaluation pairs 25 identities with 40 prompts and 4 images per
(identity, prompt); the identities' photos were never released (PhotoMaker#188), so the user supplies a
folder per identity (``--refs DIR``) and the generator's images in the personalization layout of
docs/conventions.md, ``<id_slug>/<NN>_<prompt_slug>/<k>.png``. The protocol file's ``id_note``: the four
reference images per ID are both the method's inputs and the references of CLIP-I, DINO and face
similarity; "single-image methods get one randomly chosen reference image per ID" (variant ``single-ref``,
seeded, the choice recorded in ``run.json``).

Reference folders, slices and seeds are those of ``triptych generate`` and ``personalization init``: one
implementation each, in ``benchmarks/celeb_protocol.py`` (``load_references``, ``select_ids``,
``select_prompts``, ``image_seed``). Each folder under ``--refs`` is one identity. Its class word comes from, in
order: a ``class_words.csv`` beside the folders (columns ``id,class_word``, ``id`` the folder name); the
protocol's ``class_words`` when the folder is a protocol ID's ``id_slug`` (``alan_turing``); a
``<name>_<classword>`` suffix (``newton_man``), as the sample portraits have it. A suffix that contradicts the
protocol is an error.

Benchmark parameters (``--param KEY=VALUE``, recorded in ``run.json``):

- ``refs``: the reference folder (``--refs``);
- ``ids``: ``protocol`` (the 25 IDs, each needs a folder), ``found`` (every identity under ``refs``, for
  custom identities such as the sample portraits), ``N`` (the first N protocol IDs) or comma-separated names
  or id slugs;
- ``prompts``: ``all``, ``N`` (the first N in file order) or indices and ranges (``0,7,10-12``); ``NN`` stays
  the protocol index, so a sliced run's paths are those of the full run;
- ``images_per_prompt``: 1 to the protocol's 4 (``k`` runs from 0);
- ``no_face``: ``zero`` (a generated image without a detected face scores 0 on face metrics: no identity
  was kept; each is named on stderr and listed in ``run.json`` under the metric's ``flagged.no_face``: the
  count and the sample ids, complete whatever the executor or resumes) or ``error``. A reference photo without a face is always
  an error;
- ``seed``: the base seed of the generation seeds; with ``single-ref`` it also picks each identity's one
  reference, ``Random("<seed>:<id_slug>")``, so an identity's pick does not depend on which other identities
  are scored.

Samples are single generated images. With a method, image ``k`` of prompt ``p`` of identity ``i`` is the first
image of ``generate(references, prompt, seed)`` with ``seed = base + (i*P + p)*K + k``
(``celeb_protocol.image_seed``), the seed ``triptych generate`` gives the same image, so scoring a generator in
process and generating then scoring ``--pred-dir`` see the same images; ``run.json`` records the rule
(``benchmark_extras.seeds``).

Metric calls. Per-image metrics get the image (float32 (3, H, W) in [0, 1]) and, by parameter name,
``references`` (the ID's reference paths), ``prompt`` (the filled prompt), ``name`` (for errors) and
``cache`` (``EmbeddingCache``); a callable with ``**kwargs`` gets ``references``, ``name`` and ``cache``, the
call of ``triptych/vision/face.py``. Set metrics (level ``set``: FID, KID, face diversity) get, by name,
``generated`` (every generated image, in sample order), ``real`` and ``references`` (every reference path of
the scored IDs: the real set), ``groups`` (``<id_slug>/<NN>_<prompt_slug>`` -> that folder's images) and ``name``;
their one row has ``sample_id`` ``"."`` (the whole set).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from triptych.benchmarks.celeb_protocol import CelebImage, id_slug, make_plan
from triptych.benchmarks.personalization import check_generated, face_score, no_face_policy
from triptych.errors import InputError, TriptychError
from triptych.folders import visible_files
from triptych.manifests import build_manifest
from triptych.methods import Generator, read_reference
from triptych.registry import BenchmarkSpec
from triptych.schema import loader_schema
from triptych.tasks import SET_SAMPLE_ID, BenchmarkData, MetricUse, Score
from triptych.vision.face import EmbeddingCache

PROMPT_FILES = ("prompts.csv", "prompts.json")  # written by ``triptych personalization init``; not images
# Embeddings keyed by encoder and pixels (exactly what recomputing gives), shared by every run in a process:
# a reference photo is embedded once per process, whatever the number of runs, prompts and images.
EMBEDDINGS = EmbeddingCache()


# --------------------------------------------------------------------------------------------------
# The benchmark


@loader_schema(variant=(("no_face",), ("given", "seed", "refs", "ids", "prompts", "images_per_prompt")))
def load_celeb_benchmark(spec: BenchmarkSpec, variant: str, params: dict[str, Any], data_root: Path) -> BenchmarkData:
    """The user's references (``params.refs``; ``data_root`` is not used) -> one sample per generated image.

    The manifest is built from the selected identities' reference files, so the run records their sha256.
    """
    if not params.get("refs"):
        raise InputError(f"benchmark {spec.name!r} scores against your reference photos, and none were given",
                         fix="pass --refs DIR (a folder per identity; see 'triptych personalization init')")
    policy = no_face_policy(params)
    plan, refs = make_plan(params)
    assert refs is not None
    files = [p.relative_to(refs.root).as_posix() for i in plan.ids for p in plan.references[i]]
    manifest = build_manifest(f"{spec.name} references", refs.root, files,
                              {id_slug(i): len(plan.references[i]) for i in plan.ids})
    extras = {"class_words": {id_slug(i): plan.class_words[i] for i in plan.ids},
              "given_references": {id_slug(i): [p.relative_to(refs.root).as_posix() for p in plan.given[i]]
                                   for i in plan.ids},
              "seeds": plan.seeds()}
    task = CelebTask(plan.layout(list(refs.identities)), policy)
    return BenchmarkData(spec, variant, params, refs.root, manifest, plan.images(), task, context=refs, extras=extras)


def _call(m: MetricUse, offered: dict[str, Any]) -> Any:
    """The metric's result on the data of its kind (``triptych.inputs.KIND_DATA``, in the order the registry
    checked against its callable), with the inputs its entry declares (``MetricUse``): a number, or (a set
    metric) an object with ``.value`` and ``.extras()`` (``metrics.fid.SetResult``), which
    ``Score.from_result`` reads."""
    data = m.variant.data or ()
    if not data or any(d not in offered for d in data):
        raise TriptychError(f"metric {m.spec.name}:{m.variant.name} ({m.variant.callable}) cannot be called by this "
                            f"benchmark: its kind {m.spec.kind!r} takes "
                            f"{', '.join(data) or 'data this benchmark does not know'}; it offers {', '.join(offered)}",
                            fix="score it with a benchmark of its kind, or give it a kind in triptych.inputs.KIND_DATA")
    return m(*(offered[d] for d in data), offered=offered)


class LazyImages(Sequence[torch.Tensor]):
    """Images produced on access (read from the prediction folder, or generated again): a set metric
    over 4000 images never holds them all in memory."""

    def __init__(self, samples: Sequence[CelebImage], produce: Callable[[CelebImage], torch.Tensor]) -> None:
        self.samples, self._produce = list(samples), produce

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return LazyImages(self.samples[index], self._produce)
        return self._produce(self.samples[index])

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self._produce(s) for s in self.samples)


class CelebTask:
    """The task module of ``celeb-25id-40prompt`` (see ``triptych.tasks.TaskModule``)."""

    def __init__(self, layout: set[str], no_face: str) -> None:
        self.layout = layout
        self.no_face = no_face
        self.cache = EMBEDDINGS

    def predict(self, method: Generator, sample: CelebImage) -> torch.Tensor:
        outputs = method.generate([read_reference(p) for p in sample.given], sample.prompt, sample.seed)
        if not outputs:
            raise TriptychError(f"method {type(method).__name__!r} returned no image for {sample.sample_id!r}",
                                fix="return at least one image per call")
        return check_generated(outputs[0], type(method).__name__, sample.sample_id)

    def read_prediction(self, pred_dir: Path, sample: CelebImage) -> torch.Tensor:
        path = pred_dir / f"{sample.sample_id}.png"
        if not path.is_file():
            raise InputError(f"{path}: generated image not found",
                             fix="write <pred-dir>/<id_slug>/<NN>_<prompt_slug>/<k>.png (triptych personalization init)")
        return read_reference(path)

    def check_predictions(self, pred_dir: Path, samples: Sequence[CelebImage]) -> None:
        """Every expected image present, nothing unexpected: all offenders named at once, before any scoring.
        Protocol images outside the selection (other prompts, IDs or k) are allowed and left unscored."""
        expected = {f"{s.sample_id}.png" for s in samples}
        found = {p.relative_to(pred_dir).as_posix() for p in visible_files(pred_dir)}
        found -= set(PROMPT_FILES)
        missing, extra = sorted(expected - found), sorted(found - expected - self.layout)
        outside = len(found - expected) - len(extra)
        if outside:
            print(f"{outside} protocol image(s) under {pred_dir} are outside this run's selection and not scored",
                  file=sys.stderr)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing:\n  " + "\n  ".join(summarize_missing(missing, expected)))
            if extra:
                parts.append(f"{len(extra)} not in the layout:\n  " + "\n  ".join(summarize_paths(extra)))
            raise InputError(f"--pred-dir {pred_dir} does not match the personalization layout "
                             f"(<id_slug>/<NN>_<prompt_slug>/<k>.png): " + "\n".join(parts),
                             fix="generate the missing images and move or rename the others; 'triptych "
                                 "personalization init --out DIR' writes the expected folders and prompts.csv")

    def measure(self, sample: CelebImage, image: torch.Tensor, metrics: Sequence[MetricUse]) -> list[Score]:
        name = f"generated image {sample.sample_id}"
        offered = {"generated": image, "references": list(sample.references), "prompt": sample.prompt, "name": name,
                   "cache": self.cache}
        scores = []
        for m in metrics:
            value, flags = face_score(self.no_face, name, m,
                                      lambda: _call(m, offered))
            scores.append(Score(sample.sample_id, m, float(getattr(value, "value", value)), flags))
        return scores

    def measure_set(self, samples: Sequence[CelebImage], produce: Callable[[CelebImage], torch.Tensor],
                    metrics: Sequence[MetricUse]) -> list[Score]:
        by_group: dict[str, list[CelebImage]] = defaultdict(list)
        for s in samples:
            by_group[s.group].append(s)
        references = list(dict.fromkeys(p for s in samples for p in s.references))
        offered = {"generated": LazyImages(samples, produce), "references": references, "real": references,
                   "groups": {g: LazyImages(members, produce) for g, members in by_group.items()},
                   "name": f"{len(samples)} generated images"}
        return [Score.from_result(SET_SAMPLE_ID, m, _call(m, offered)) for m in metrics]


# --------------------------------------------------------------------------------------------------
# Naming offenders compactly (every one of them)


def _braces(folder: str, names: list[str]) -> str:
    return f"{folder}/{names[0]}" if len(names) == 1 else f"{folder}/{{{','.join(names)}}}"


def summarize_missing(missing: list[str], expected: set[str]) -> list[str]:
    """Missing images grouped: a whole identity, a whole prompt folder, or the listed images of a folder."""
    lines = []
    per_id: dict[str, list[str]] = defaultdict(list)
    for path in missing:
        per_id[path.split("/", 1)[0]].append(path)
    for ident, paths in per_id.items():
        total = sum(1 for e in expected if e.startswith(f"{ident}/"))
        if len(paths) == total:
            lines.append(f"{ident}/ (all {total} images)")
            continue
        per_folder: dict[str, list[str]] = defaultdict(list)
        for path in paths:
            folder, file = path.rsplit("/", 1)
            per_folder[folder].append(file)
        for folder, files in per_folder.items():
            total = sum(1 for e in expected if e.rsplit("/", 1)[0] == folder)
            lines.append(f"{folder}/ (all {total} images)" if len(files) == total else _braces(folder, files))
    return lines


def summarize_paths(paths: list[str]) -> list[str]:
    """Paths grouped by folder: ``folder/{a.png,b.jpg}``."""
    per_folder: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        folder, _, file = path.rpartition("/")
        per_folder[folder or "."].append(file)
    return [_braces(folder, files) for folder, files in per_folder.items()]
