"""Declared inputs: what a metric variant or a method factory takes besides its data and its ``params``.

A metric variant (``metrics/specs/*.yaml``) and a method entry (``baselines/specs/*.yaml``) list under
``inputs`` the keyword inputs their callable receives, each one of the kinds below, as ``NAME: required``
(the callable needs it) or ``NAME: optional`` (it can do without: a parameter with a default). An entry without
``inputs`` takes none (docs/conventions.md, "Declared inputs"). The registry checks the callable's signature
against the declaration when it loads the callable (``check_signature``); no caller reads a signature to
decide what to pass: ``triptych measure``, the benchmarks and ``build_method`` pass exactly the declared inputs
that they have (``bind``).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from triptych.errors import SpecError, TriptychError
from triptych.schema import nearest

METRIC_INPUTS: dict[str, str] = {
    "masks": "the hole masks of a video, one (H, W) array per frame, > 0 = hole (measure --mask)",
    "flow_dir": "the folder of the stored ground-truth flows of a video (measure --flow-dir)",
    "state": "one dict shared by the videos of a measurement, in sorted order (DEVIL's one patch RNG)",
    "trunk": "a user file standing in for the variant's first weights entry (measure --weights)",
    "weights": "a user file for the metric's network, recorded by its measure kind (measure --weights)",
    "name": "a label of the sample, for error messages (benchmarks)",
    "cache": "a feature cache shared by the samples of a run (benchmarks)",
}
METHOD_INPUTS: dict[str, str] = {
    "weights": "a checkpoint replacing the method's registry weights (--weights FILE)",
    "device": "the torch device the method runs on (--device)",
    "context": "the benchmark data (triptych.tasks.BenchmarkData), for a method that draws on other samples",
}
# The data a metric of each kind receives first, in this order and under these names (triptych/measure_kinds,
# benchmarks/*.py); every other parameter is a declared input or a variant param.
KIND_DATA: dict[str, tuple[str, ...]] = {
    "paired_image": ("pred", "gt"), "masked_image": ("pred", "gt", "mask"),
    "video_flow": ("pred_frames", "gt_frames"), "video_frames": ("pred_frames", "gt_frames"),
    "video_set": ("pairs",), "identity_images": ("generated", "references"), "text_image": ("generated", "prompt"),
    "image_set": ("real", "generated"), "image_groups": ("groups",),
}


@dataclass(frozen=True)
class Inputs:
    """The declared inputs of one callable: those it needs and those it can do without."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self.required + self.optional

    def mode(self, name: str) -> str:
        """``required``, ``optional`` or ``refused``: how the callable takes input ``name``."""
        return "required" if name in self.required else "optional" if name in self.optional else "refused"

    def takes(self, name: str) -> bool:
        return name in self.names

    def declared(self) -> dict[str, str]:
        """The declaration as a spec writes it: ``{name: required|optional}``."""
        return {n: self.mode(n) for n in self.names}


def parse_inputs(value: Any, known: Mapping[str, str], where: str) -> Inputs:
    """An entry's ``inputs``: a mapping of input name -> ``required`` / ``optional`` (absent or null: none),
    each name one of ``known``."""
    if value is None:
        return Inputs()
    if not isinstance(value, dict) or not all(v in ("required", "optional") for v in value.values()):
        raise SpecError(f"{where}: inputs must be a mapping of input name -> required or optional, not {value!r}",
                        fix=f"e.g. inputs: {{masks: required, trunk: optional}}; the inputs: {', '.join(known)}")
    for name in value:
        if name not in known:
            raise SpecError(f"{where}: inputs: unknown input {name!r}{nearest(str(name), known)}",
                            fix="declare only these inputs: " + "; ".join(f"{k} ({v})" for k, v in known.items()))
    return Inputs(tuple(n for n, mode in value.items() if mode == "required"),
                  tuple(n for n, mode in value.items() if mode == "optional"))


def check_signature(fn: Callable[..., Any], inputs: Inputs, data: tuple[str, ...] | None,
                    given: tuple[str, ...], where: str, ref: str) -> None:
    """``fn`` (``ref``, declared at ``where``) takes its ``data`` first, accepts every declared input (an
    optional one with a default) and requires nothing else that its ``given`` params do not set. ``data``
    None (a kind triptych does not know): the leading required parameters are the data."""
    parameters = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    named = {n: p for n, p in parameters.items()
             if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}
    if data is None:
        leading: list[str] = []
        for n, p in named.items():
            if p.default is not inspect.Parameter.empty or n in inputs.names or n in given:
                break
            leading.append(n)
        data = tuple(leading)
    elif tuple(named)[:len(data)] != data:
        raise SpecError(f"{where}: {ref} must take the data {', '.join(data)} first, in this order "
                        f"(it takes {', '.join(named) or 'nothing'})", fix="rename or reorder its parameters")
    for name in inputs.names:
        if name not in named and not takes_any:
            raise SpecError(f"{where}: inputs declares {name!r}, which {ref} does not take",
                            fix=f"drop {name!r} from inputs, or give {ref} a parameter {name!r}")
        if name in inputs.optional and name in named and named[name].default is inspect.Parameter.empty:
            raise SpecError(f"{where}: inputs declares {name!r} optional, but {ref} requires it",
                            fix=f"declare '{name}: required', or give the parameter a default")
    undeclared = [n for n, p in named.items() if p.default is inspect.Parameter.empty
                  and n not in data and n not in inputs.names and n not in given]
    if undeclared:
        raise SpecError(f"{where}: {ref} requires {', '.join(map(repr, undeclared))}, which the entry neither "
                        f"declares in inputs nor sets in params",
                        fix="declare it under inputs (docs/conventions.md, 'Declared inputs'), or give it a default")


def bind(inputs: Inputs, offered: Mapping[str, Any], who: str) -> dict[str, Any]:
    """The keyword inputs to pass: each declared input that the caller ``offered``; a required one that it
    did not offer is an error naming ``who``."""
    missing = [n for n in inputs.required if n not in offered]
    if missing:
        raise TriptychError(f"{who} needs {', '.join(missing)}, which this caller does not give "
                            f"(it gives {', '.join(offered) or 'no input'})",
                            fix="use a variant or method that does without it, or a caller that gives it")
    return {n: offered[n] for n in inputs.names if n in offered}
