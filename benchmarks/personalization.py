"""Portrait sets for identity-preserving generation, and leave-one-out face-similarity scoring.

A portrait set is one folder per identity, ``<root>/<name>_<classword>/``, holding that identity's
reference photos (JPEG or PNG). The class word is the folder suffix, as the sample portraits have it
(docs/conventions.md, ``--pred-dir`` layouts). The published protocol's IDs and images were never released
(PhotoMaker#188), so users supply the reference images (docs/protocols/personalization.md).

Both personalization benchmarks take the variant parameter ``no_face`` (``no_face_policy``): ``zero`` scores
a generated image without a detected face 0 on face metrics, names it on stderr and flags it (``run.json``:
the metric's ``flagged.no_face``, count and sample ids), so the ``blank`` sanity baseline scores 0 and is
flagged; ``error`` stops the run. A reference photo without a face is always an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import sys
from typing import Any, Callable, Sequence

import torch

from triptych.benchmarks.portrait_folders import id_slug, load_portraits
from triptych.errors import InputError, TriptychError
from triptych.folders import refuse_inexact, visible_entries, visible_files
from triptych.manifests import check_folders_listed
from triptych.methods import Generator, read_reference
from triptych.registry import BenchmarkSpec
from triptych.schema import loader_schema
from triptych.tasks import BenchmarkData, load_checked_manifest, MetricUse, Score
from triptych.vision.face import EmbeddingCache, NoFaceError


def check_generated(output: Any, method: str, sample_id: str) -> torch.Tensor:
    if not isinstance(output, torch.Tensor) or output.ndim != 3 or output.shape[0] != 3:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise TriptychError(f"method {method!r} returned {shape} for sample {sample_id!r}, expected a (3, H, W) "
                            "tensor", fix="return float32 RGB tensors (see triptych.methods.Generator)")
    if not torch.isfinite(output).all():
        raise TriptychError(f"method {method!r} returned NaN or Inf for sample {sample_id!r}",
                            fix="fix the method; triptych never scores non-finite outputs")
    return output.detach().to("cpu", torch.float32)


NO_FACE_POLICIES = ("zero", "error")  # the values of the variant parameter ``no_face``


def no_face_policy(params: dict[str, Any]) -> str:
    """The variant's ``no_face`` value, checked."""
    value = params.get("no_face")
    if value not in NO_FACE_POLICIES:
        raise InputError(f"no_face={value!r}: expected 'zero' or 'error'",
                         fix="--param no_face=zero or --param no_face=error")
    return str(value)


def face_score(policy: str, name: str, m: MetricUse, compute: Callable[[], Any]) -> tuple[Any, dict[str, Any] | None]:
    """``compute()`` and no flag; under ``no_face=zero`` a generated image ``name`` without a face is named on
    stderr and scores 0 with the flag ``no_face`` (a reference photo without a face is always an error)."""
    try:
        return compute(), None
    except NoFaceError as exc:
        if policy != "zero" or not exc.message.startswith(f"{name}:"):
            raise
        print(f"{exc.message}: {m.spec.name}:{m.variant.name} scored 0 (benchmark parameter no_face=zero)",
              file=sys.stderr)
        return 0.0, {"no_face": True}  # listed in run.json under the metric's "flagged"


@dataclass(frozen=True)
class LeaveOneOut:
    """One generation request of the leave-one-out protocol: identity ``name`` with reference ``k`` held out.

    The method gets the other references, the prompt ``"a photo of a <class word>"`` and seed k; each image
    it returns is scored against the held-out photo only. So ``reference_copy`` measures same-identity
    similarity between two different photos, and ``other_id`` cross-identity similarity.
    """

    name: str
    k: int
    held_out: Path
    given: tuple[Path, ...]
    prompt: str

    @property
    def sample_prefix(self) -> str:
        return f"{id_slug(self.name)}/loo_{self.k}"


@loader_schema(variant=(("no_face",), ()), params=(("root", "manifest"), ()))
def load_portrait_benchmark(spec: BenchmarkSpec, variant: str, params: dict[str, Any], data_root: Path) -> BenchmarkData:
    """A portrait set under ``params.root`` checked against its manifest; samples per the variant."""
    root = data_root / spec.params["root"]
    manifest = load_checked_manifest(spec, data_root)
    policy = no_face_policy(params)
    portraits = load_portraits(root)
    check_folders_listed(manifest, root, [root] + [paths[0].parent for paths in portraits.identities.values()])
    samples = []
    for name in sorted(portraits.identities):
        paths = portraits.identities[name]
        if len(paths) < 2:
            raise InputError(f"{paths[0].parent}: leave-one-out scoring needs at least 2 reference images, "
                             f"found {len(paths)}", fix="add more reference photos of this identity")
        prompt = f"a photo of a {portraits.class_words[name]}"
        for k, held_out in enumerate(paths):
            samples.append(LeaveOneOut(name, k, held_out, tuple(p for p in paths if p != held_out), prompt))
    return BenchmarkData(spec, variant, params, root, manifest, samples, LeaveOneOutTask(policy),
                        context=portraits)


class LeaveOneOutTask:
    """The task module of the leave-one-out portrait protocol (see ``triptych.tasks.TaskModule``)."""

    def __init__(self, no_face: str) -> None:
        self.no_face = no_face
        self.cache = EmbeddingCache()  # each reference photo is embedded once per run

    def predict(self, method: Generator, sample: LeaveOneOut) -> list[torch.Tensor]:
        outputs = method.generate([read_reference(p) for p in sample.given], sample.prompt, sample.k)
        if not outputs:
            raise TriptychError(f"method {type(method).__name__!r} returned no images for {sample.name!r} "
                                f"(held out {sample.held_out})", fix="return at least one image per call")
        return [check_generated(o, type(method).__name__, f"{sample.sample_prefix}/{i}") for i, o in enumerate(outputs)]

    def check_predictions(self, pred_dir: Path, samples: Sequence[LeaveOneOut]) -> None:
        """Each sample's folder holds its images ``<i>.png`` and nothing else lies under ``pred_dir``: missing
        folders and unexpected files are named in one error, before any scoring (hidden files ignored)."""
        prefixes = {s.sample_prefix for s in samples}
        found, extra = set(), []
        for path in visible_files(pred_dir):
            rel = path.relative_to(pred_dir)
            if rel.parent.as_posix() in prefixes and path.suffix == ".png" and path.stem.isdigit():
                found.add(rel.parent.as_posix())
            else:
                extra.append(rel.as_posix())
        refuse_inexact("--pred-dir", pred_dir, "<id_slug>/loo_<k>/<i>.png",
                       [("folder without images", sorted(prefixes - found)), ("file not expected", extra)])

    def read_prediction(self, pred_dir: Path, sample: LeaveOneOut) -> list[torch.Tensor]:
        folder = pred_dir / sample.sample_prefix
        images = sorted((p for p in visible_entries(folder) if p.suffix == ".png"), key=lambda p: p.stem) \
            if folder.is_dir() else []
        if not images:
            raise InputError(f"{folder}: no generated images for identity {sample.name!r} (reference {sample.k} "
                             "held out)", fix="write <pred-dir>/<id_slug>/loo_<k>/<i>.png")
        return [read_reference(p) for p in images]

    def measure(self, sample: LeaveOneOut, prediction: list[torch.Tensor], metrics: Sequence[MetricUse]) -> list[Score]:
        scores = []
        for i, image in enumerate(prediction):
            sample_id = f"{sample.sample_prefix}/{i}"
            name = f"generated image {sample_id}"
            for m in metrics:
                offered = {"name": name, "cache": self.cache}  # the inputs it declares (triptych.inputs)
                value, flags = face_score(self.no_face, name, m, lambda: m(image, [sample.held_out], offered=offered))
                scores.append(Score(sample_id, m, float(value), flags))
        return scores
