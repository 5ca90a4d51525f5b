"""``celeb-25id-40prompt``: the 25-ID x 40-prompt personalization protocol on the user's reference photos.

protocols.md section 3: PhotoMaker's evaluation pairs 25 identities with 40 prompts and 4 images per
(identity, prompt); the identities' photos were never released (PhotoMaker#188), so the user supplies a
folder per identity (``--refs DIR``) and the generator's images in the personalization layout of
conventions.md, ``<id_slug>/<NN>_<prompt_slug>/<k>.png``. The protocol file's ``id_note``: the four
reference images per ID are both the method's inputs and the references of CLIP-I, DINO and face
similarity; "single-image methods get one randomly chosen reference image per ID" (variant ``single-ref``,
seeded, the choice recorded in ``run.json``).

Reference folders. Each folder under ``--refs`` is one identity. Its class word comes from, in order: a
``class_words.csv`` beside the folders (columns ``id,class_word``, ``id`` the folder name); the protocol's
``class_words`` when the folder is a protocol ID's ``id_slug`` (``alan_turing``); a ``<name>_<classword>``
suffix (``newton_man``), as the sample portraits have it. A suffix that contradicts the protocol is an error.

Benchmark parameters (``--param KEY=VALUE``, recorded in ``run.json``):

- ``refs``: the reference folder (``--refs``);
- ``ids``: ``protocol`` (the 25 IDs, each needs a folder), ``found`` (every identity under ``refs``, for
  custom identities such as the sample portraits) or comma-separated id slugs;
- ``prompts``: ``all``, ``N`` (the first N in file order) or indices and ranges (``0,7,10-12``); ``NN`` stays
  the protocol index, so a sliced run's paths are those of the full run;
- ``images_per_prompt``: 1 to the protocol's 4 (``k`` runs from 0);
- ``no_face``: ``zero`` (a generated image without a detected face scores 0 on face metrics: no identity
  was kept; each is named on stderr) or ``error``. A reference photo without a face is always an error;
- ``seed`` (``single-ref``): picks each identity's one reference, ``Random("<seed>:<id_slug>")``, so an
  identity's pick does not depend on which other identities are scored.

Samples are single generated images. With a method, image ``k`` of an (ID, prompt) is the first image of
``generate(references, prompt, seed=k)``.

Metric calls. Per-image metrics get the image (float32 (3, H, W) in [0, 1]) and, by parameter name,
``references`` (the ID's reference paths), ``prompt`` (the filled prompt), ``name`` (for errors) and
``cache`` (``EmbeddingCache``); a callable with ``**kwargs`` gets ``references``, ``name`` and ``cache``, the
call of ``metrics/face.py``. Set metrics (level ``set``: FID, KID, face diversity) get, by name,
``generated`` (every generated image, in sample order), ``real`` and ``references`` (every reference path of
the scored IDs: the real set), ``groups`` (``<id_slug>/<NN>_<prompt_slug>`` -> that folder's images) and ``name``;
their one row has ``sample_id`` ``"."`` (the whole set).
"""

from __future__ import annotations

import csv
import inspect
import random
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from triptych.benchmarks.celeb_protocol import Prompt, Protocol, id_slug, load_protocol
from triptych.benchmarks.personalization import (
    CLASS_WORDS, PortraitSet, check_generated, read_reference, split_class_word)
from triptych.errors import InputError, TriptychError
from triptych.manifests import build_manifest
from triptych.media import IMAGE_SUFFIXES
from triptych.methods import Generator
from triptych.metrics.face import EmbeddingCache, NoFaceError
from triptych.registry import BenchmarkSpec
from triptych.scoring import BenchmarkData, MetricUse, Score

CLASS_WORDS_FILE = "class_words.csv"
PROMPT_FILES = ("prompts.csv", "prompts.json")  # written by ``triptych personalization init``; not images
SET_SAMPLE_ID = "."
# Embeddings keyed by encoder and pixels (exactly what recomputing gives), shared by every run in a process:
# a reference photo is embedded once per process, whatever the number of runs, prompts and images.
EMBEDDINGS = EmbeddingCache()


# --------------------------------------------------------------------------------------------------
# Reference folders and the selection of identities, prompts and images


def read_class_words(root: Path) -> dict[str, str]:
    """``<root>/class_words.csv`` (``id,class_word``) as folder name -> class word; {} when absent."""
    path = root / CLASS_WORDS_FILE
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"id", "class_word"} <= set(rows[0]):
        raise InputError(f"{path}: expected the columns id,class_word, found {','.join(rows[0])}",
                         fix="write a header line 'id,class_word' and one line per identity folder")
    return {row["id"].strip(): row["class_word"].strip().lower() for row in rows}


def identify(folder: str, protocol: Protocol, listed: dict[str, str], where: Path) -> tuple[str, str]:
    """A reference folder's (identity name, class word); the module docstring gives the order of sources."""
    by_slug = {id_slug(i): i for i in protocol.ids}
    if folder in listed:
        return by_slug.get(id_slug(folder), folder), listed[folder]
    if id_slug(folder) in by_slug:
        name = by_slug[id_slug(folder)]
        return name, protocol.class_words[name]
    try:
        name, word = split_class_word(folder)
    except InputError as exc:
        raise InputError(f"{where}: no class word for identity folder {folder!r}",
                         fix=f"add it to {where.parent / CLASS_WORDS_FILE} (id,class_word), or rename the folder "
                             f"<name>_<classword> with one of {', '.join(CLASS_WORDS)}") from exc
    if id_slug(name) in by_slug:
        protocol_name = by_slug[id_slug(name)]
        if protocol.class_words[protocol_name] != word:
            raise InputError(f"{where}: class word {word!r} contradicts the protocol's "
                             f"{protocol.class_words[protocol_name]!r} for {protocol_name}",
                             fix=f"rename the folder {id_slug(protocol_name)}")
        return protocol_name, word
    return name, word


def load_references(root: str | Path, protocol: Protocol) -> PortraitSet:
    """Every identity folder under ``root`` with its images (sorted) and class word; errors name the folder."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--refs {root}: no such folder",
                         fix="point --refs at a folder holding one folder of reference photos per identity")
    listed = read_class_words(root)
    identities: dict[str, list[Path]] = {}
    class_words: dict[str, str] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name, word = identify(folder.name, protocol, listed, folder)
        if id_slug(name) in {id_slug(n) for n in identities}:
            raise InputError(f"{folder}: identity {name!r} is declared by two folders", fix="keep one folder per identity")
        images = sorted(p for p in folder.iterdir()
                        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InputError(f"{folder}: no JPEG or PNG reference images",
                             fix="add the identity's reference photos, or remove the folder")
        identities[name], class_words[name] = images, word
    if not identities:
        raise InputError(f"--refs {root}: no identity folders found",
                         fix="put each identity's reference photos in <refs>/<id_slug>/ or <refs>/<name>_<classword>/")
    return PortraitSet(root, identities, class_words)


def select_ids(protocol: Protocol, available: Sequence[str], choice: str) -> list[str]:
    """``protocol`` (all 25, in protocol order), ``found`` (every available identity, by slug) or a list of
    slugs. Identities that are asked for but have no reference folder are named, all of them."""
    by_slug = {id_slug(n): n for n in available}
    if choice == "found":
        return [by_slug[s] for s in sorted(by_slug)]
    wanted = [id_slug(i) for i in protocol.ids] if choice == "protocol" else \
        [s.strip() for s in str(choice).split(",") if s.strip()]
    missing = [s for s in wanted if s not in by_slug]
    if missing:
        raise InputError(f"no reference folder for {len(missing)} identit{'y' if len(missing) == 1 else 'ies'}: "
                         f"{', '.join(missing)} (found: {', '.join(sorted(by_slug)) or 'none'})",
                         fix="add a folder <refs>/<id_slug>/ for each; or use the identities you have: "
                             "--param ids=found (score), --ids found (personalization init); custom identities "
                             "are not comparable with the published tables")
    return [by_slug[s] for s in wanted]


def select_prompts(protocol: Protocol, choice: Any) -> tuple[Prompt, ...]:
    """``all``, ``N`` (the first N prompts in file order) or protocol indices and ranges separated by commas
    (``0,7,10-12``; the grammar of ``triptych generate --prompts``), in file order."""
    text = str(choice).strip()
    n = len(protocol.prompts)
    try:
        if text == "all":
            return protocol.prompts
        if text.isdigit():
            count = int(text)
            if not 1 <= count <= n:
                raise ValueError
            return protocol.prompts[:count]
        indices: set[int] = set()
        for item in text.split(","):
            first, _, last = item.strip().partition("-")
            indices.update(range(int(first), int(last or first) + 1))
        if not indices or not all(0 <= i < n for i in indices):
            raise ValueError
        return tuple(protocol.prompts[i] for i in sorted(indices))
    except ValueError:
        raise InputError(f"prompts={text!r}: expected 'all', a count 1..{n}, or indices 0..{n - 1} and ranges "
                         "separated by commas", fix="e.g. --param prompts=5 or --param prompts=0,7,10-12") from None


def images_per_prompt(protocol: Protocol, value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if not 1 <= n <= protocol.images_per_prompt:
        raise InputError(f"images_per_prompt={value!r}: expected 1..{protocol.images_per_prompt}",
                         fix=f"the protocol generates {protocol.images_per_prompt} images per ID and prompt")
    return n


def single_reference(paths: Sequence[Path], seed: int, name: str) -> Path:
    """The one reference a single-image method gets: ``Random("<seed>:<id_slug>")`` over the sorted paths."""
    return paths[random.Random(f"{seed}:{id_slug(name)}").randrange(len(paths))]


# --------------------------------------------------------------------------------------------------
# Generation requests (one per image): shared by the benchmark and ``triptych personalization init``


@dataclass(frozen=True)
class CelebImage:
    """One generated image of the protocol: identity ``name``, prompt (filled) and image index ``k``."""

    sample_id: str  # <id_slug>/<NN>_<prompt_slug>/<k>
    name: str
    class_word: str
    prompt_index: int
    prompt: str
    k: int
    given: tuple[Path, ...]  # what the method gets
    references: tuple[Path, ...]  # what the identity metrics compare with

    @property
    def group(self) -> str:
        return self.sample_id.rsplit("/", 1)[0]


@dataclass(frozen=True)
class Plan:
    """The selection of a run: protocol, identities with class words, prompts, images per prompt."""

    protocol: Protocol
    ids: tuple[str, ...]
    class_words: dict[str, str]
    prompts: tuple[Prompt, ...]
    n_images: int
    given: dict[str, tuple[Path, ...]]
    references: dict[str, tuple[Path, ...]]

    def images(self) -> list[CelebImage]:
        return [CelebImage(self.protocol.image_path(i, p, k)[:-len(".png")], i, self.class_words[i], p.index,
                           self.protocol.fill(p, self.class_words[i]), k, self.given.get(i, ()),
                           self.references.get(i, ()))
                for i in self.ids for p in self.prompts for k in range(self.n_images)]

    def layout(self, available: Sequence[str]) -> set[str]:
        """Every image path a full protocol run over ``available`` identities may hold (selection or not)."""
        return set(self.protocol.expected_images(tuple(available)))


def make_plan(params: dict[str, Any], protocol: Protocol | None = None) -> tuple[Plan, PortraitSet | None]:
    """The run's selection from the benchmark parameters; ``refs`` None plans the protocol's own IDs."""
    protocol = protocol or load_protocol()
    refs = load_references(params["refs"], protocol) if params.get("refs") else None
    if refs is None:
        if params.get("ids", "protocol") != "protocol":
            raise InputError(f"ids={params['ids']!r} needs the reference folder", fix="pass --refs DIR")
        ids, words = list(protocol.ids), dict(protocol.class_words)
    else:
        ids, words = select_ids(protocol, list(refs.identities), str(params.get("ids", "protocol"))), refs.class_words
    references = {i: tuple(refs.identities[i]) for i in ids} if refs else {}
    if params.get("given", "all") == "one":
        try:
            seed = int(params.get("seed", 0))
        except (TypeError, ValueError):
            raise InputError(f"seed={params.get('seed')!r} is not an integer", fix="e.g. --param seed=0") from None
        given = {i: (single_reference(paths, seed, i),) for i, paths in references.items()}
    else:
        given = dict(references)
    plan = Plan(protocol, tuple(ids), {i: words[i] for i in ids}, select_prompts(protocol, params.get("prompts", "all")),
                images_per_prompt(protocol, params.get("images_per_prompt", protocol.images_per_prompt)),
                given, references)
    return plan, refs


# --------------------------------------------------------------------------------------------------
# The benchmark


def load_celeb_benchmark(spec: BenchmarkSpec, variant: str, params: dict[str, Any], data_root: Path) -> BenchmarkData:
    """The user's references (``params.refs``; ``data_root`` is not used) -> one sample per generated image.

    The manifest is built from the selected identities' reference files, so the run records their sha256.
    """
    if not params.get("refs"):
        raise InputError(f"benchmark {spec.name!r} scores against your reference photos, and none were given",
                         fix="pass --refs DIR (a folder per identity; see 'triptych personalization init')")
    if params.get("no_face") not in ("zero", "error"):
        raise InputError(f"no_face={params.get('no_face')!r}: expected 'zero' or 'error'",
                         fix="--param no_face=zero or --param no_face=error")
    plan, refs = make_plan(params)
    assert refs is not None
    files = [p.relative_to(refs.root).as_posix() for i in plan.ids for p in plan.references[i]]
    manifest = build_manifest(f"{spec.name} references", refs.root, files,
                              {id_slug(i): len(plan.references[i]) for i in plan.ids})
    extras = {"class_words": {id_slug(i): plan.class_words[i] for i in plan.ids},
              "given_references": {id_slug(i): [p.relative_to(refs.root).as_posix() for p in plan.given[i]]
                                   for i in plan.ids}}
    task = CelebTask(plan.layout(list(refs.identities)), params["no_face"])
    return BenchmarkData(spec, variant, params, refs.root, manifest, plan.images(), task, context=refs, extras=extras)


def _bind(fn: Callable[..., Any], offered: dict[str, Any], catch_all: Sequence[str]) -> dict[str, Any]:
    """The inputs a metric callable takes: those it names, and ``catch_all`` if it has ``**kwargs``."""
    parameters = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return {k: v for k, v in offered.items() if k in parameters or (takes_any and k in catch_all)}


def _call(m: MetricUse, args: tuple[Any, ...], offered: dict[str, Any], catch_all: Sequence[str]) -> float:
    """The metric's value; a set metric may return an object with ``.value`` (``metrics.fid.SetResult``)."""
    kwargs = {**_bind(m.fn, offered, catch_all), **m.variant.params}
    try:
        inspect.signature(m.fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise TriptychError(f"metric {m.spec.name}:{m.variant.name} ({m.variant.callable}) cannot be called by "
                            f"this benchmark ({exc}); it offers {', '.join(offered)}",
                            fix="name the inputs the callable needs as in triptych.benchmarks.celeb") from exc
    result = m.fn(*args, **kwargs)
    return float(getattr(result, "value", result))


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
    """The task module of ``celeb-25id-40prompt`` (see ``triptych.scoring.TaskModule``)."""

    def __init__(self, layout: set[str], no_face: str) -> None:
        self.layout = layout
        self.no_face = no_face
        self.cache = EMBEDDINGS

    def predict(self, method: Generator, sample: CelebImage) -> torch.Tensor:
        outputs = method.generate([read_reference(p) for p in sample.given], sample.prompt, sample.k)
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
        found = {p.relative_to(pred_dir).as_posix() for p in pred_dir.rglob("*")
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(pred_dir).parts)}
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
        offered = {"references": list(sample.references), "prompt": sample.prompt, "name": name, "cache": self.cache}
        scores = []
        for m in metrics:
            try:
                value = _call(m, (image,), offered, ("references", "name", "cache"))
            except NoFaceError as exc:
                if self.no_face != "zero" or not exc.message.startswith(f"{name}:"):
                    raise  # a reference photo without a face is always an error
                print(f"{exc.message}: {m.spec.name}:{m.variant.name} scored 0 (benchmark parameter no_face=zero)",
                      file=sys.stderr)
                value = 0.0
            scores.append(Score(sample.sample_id, m, value))
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
        return [Score(SET_SAMPLE_ID, m, _call(m, (), offered, ("name",))) for m in metrics]


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
