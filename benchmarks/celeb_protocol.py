"""The 25-ID x 40-prompt personalization protocol (``celeb-25id-40prompt``) as data.

protocols.md section 3: PhotoMaker's evaluation pairs 25 identities with 40 prompts and 4 images per
(identity, prompt); its images were never released, so a user generates them. The protocol file ships
inside the package (``benchmarks/data/personalization_celeb.json``, a copy of the shared protocol), and
this module is the one place that turns it into generation requests and into the ``--pred-dir`` layout
of conventions.md: ``<id_slug>/<NN>_<prompt_slug>/<k>.png``, ``NN`` the prompt's index in file order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from triptych.errors import InputError


def id_slug(name: str) -> str:
    """conventions.md: the name in lower case, every run of non-alphanumerics replaced by ``_``.

    >>> id_slug("Alan Turing (young)")
    'alan_turing_young_'
    """
    return re.sub(r"[^0-9a-z]+", "_", name.lower())


def prompt_slug(prompt: str) -> str:
    """A prompt as a folder name: :func:`id_slug` with leading and trailing ``_`` removed.

    >>> prompt_slug("a <class word> wearing a Superman outfit")
    'a_class_word_wearing_a_superman_outfit'
    """
    return id_slug(prompt).strip("_")


@dataclass(frozen=True)
class Prompt:
    """One protocol prompt: its index in file order, category, and the template with the placeholder."""

    index: int
    category: str
    template: str

    @property
    def folder(self) -> str:
        """``NN_<prompt_slug>``: the zero-padded index and the template's slug (class word not filled in)."""
        return f"{self.index:02d}_{prompt_slug(self.template)}"


@dataclass(frozen=True)
class Protocol:
    """The parsed protocol file."""

    name: str
    ids: tuple[str, ...]
    class_words: dict[str, str]
    prompts: tuple[Prompt, ...]
    images_per_prompt: int
    placeholder: str
    generation_settings: dict
    source: str

    def fill(self, prompt: Prompt, class_word: str) -> str:
        """The prompt text for one identity: the placeholder replaced by its class word."""
        return prompt.template.replace(self.placeholder, class_word)

    def image_path(self, id_name: str, prompt: Prompt, k: int) -> str:
        """The relative POSIX path of generated image ``k`` (conventions.md personalization layout)."""
        if not 0 <= k < self.images_per_prompt:
            raise ValueError(f"image index {k} outside 0..{self.images_per_prompt - 1}")
        return f"{id_slug(id_name)}/{prompt.folder}/{k}.png"

    def expected_images(self, ids: tuple[str, ...] | None = None) -> list[str]:
        """Every relative path a complete run writes, identities then prompts then k, in protocol order."""
        return [self.image_path(i, p, k) for i in (ids or self.ids) for p in self.prompts
                for k in range(self.images_per_prompt)]


def parse_protocol(doc: dict, where: str) -> Protocol:
    """Validate and parse a protocol document (the shape of ``personalization_celeb.json``)."""
    try:
        prompts = tuple(Prompt(i, category, template) for i, (category, template) in
                        enumerate((c, t) for c, items in doc["prompts"].items() for t in items))
        protocol = Protocol(name=str(doc["name"]), ids=tuple(doc["ids"]), class_words=dict(doc["class_words"]),
                            prompts=prompts, images_per_prompt=int(doc["images_per_id_per_prompt"]),
                            placeholder=str(doc["class_word_placeholder"]),
                            generation_settings=dict(doc.get("generation_settings_of_reference_method", {})),
                            source=str(doc.get("source", "")))
    except (KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{where}: not a personalization protocol ({exc!r} missing or malformed)",
                         fix="start from benchmarks/data/personalization_celeb.json") from exc
    missing = [i for i in protocol.ids if i not in protocol.class_words]
    if missing:
        raise InputError(f"{where}: no class word for {', '.join(missing)}", fix="add them to 'class_words'")
    unfilled = [p.template for p in prompts if protocol.placeholder not in p.template]
    if unfilled:
        raise InputError(f"{where}: prompts without the placeholder {protocol.placeholder!r}: {unfilled}",
                         fix="every prompt names the identity by its class word")
    return protocol


def load_protocol(path: str | Path | None = None) -> Protocol:
    """The packaged ``celeb-25id-40prompt`` protocol, or a protocol file of the same shape at ``path``."""
    if path is None:
        packaged = resources.files("triptych.benchmarks") / "data" / "personalization_celeb.json"
        return parse_protocol(json.loads(packaged.read_text(encoding="utf-8")), "personalization_celeb.json")
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the protocol file ({exc})",
                         fix="pass a JSON file shaped like benchmarks/data/personalization_celeb.json") from exc
    return parse_protocol(doc, str(path))
