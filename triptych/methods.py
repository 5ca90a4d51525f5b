"""The interfaces every scored method implements, one per task, with one convention for all of them.

Convention (all three tasks):
- images are ``torch.Tensor`` float32 in [0, 1], RGB, channel-first: a frame is (3, H, W), a video is
  (T, 3, H, W), masks are (T, 1, H, W) float32 with 1 = hole;
- tensors arrive on the CPU; a method moves them to its own device and returns CPU tensors;
- one sample per call (no batch axis): the harness, not the method, decides batching, so a batch size
  can never change a number;
- outputs keep the input's spatial size; values outside [0, 1] are allowed (each metric variant says
  whether it clamps) but NaN / Inf are errors.

A registry entry (``baselines/specs/*.yaml``) points at a factory ``make(**params)`` returning an object
that implements the task's protocol; a factory that declares a ``context`` parameter also receives the
benchmark's ``BenchmarkData`` (for baselines such as ``other_id`` that draw on other samples).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

from triptych.errors import InputError, TriptychError
from triptych.inputs import bind
from triptych.media import read_rgb
from triptych.registry import MethodSpec, registry
from triptych.schema import check_factory_keys, factory_parameters
from triptych.task_list import TASK_INFO

if TYPE_CHECKING:  # torch is imported where a method runs, not by a process that only scores files
    import torch


@runtime_checkable
class Inpainter(Protocol):
    def inpaint(self, frames: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """frames (T, 3, H, W) and masks (T, 1, H, W) (1 = hole, after the benchmark's dilation) ->
        completed frames (T, 3, H, W). The harness composites ``pred * mask + gt * (1 - mask)`` and
        quantises as the benchmark variant prescribes; the method need not."""


@runtime_checkable
class Interpolator(Protocol):
    def interpolate(self, frame0: torch.Tensor, frame1: torch.Tensor, t: float) -> torch.Tensor:
        """Two frames (3, H, W) and a time 0 < t < 1 -> the frame at t (3, H, W), unrounded."""


@runtime_checkable
class Generator(Protocol):
    def generate(self, reference_images: Sequence[torch.Tensor], prompt: str, seed: int) -> list[torch.Tensor]:
        """Reference photos of one identity (each (3, H, W), sizes may differ), a prompt with the class
        word, a seed -> generated images (each (3, H', W')). The same seed must give the same images."""


# Each task's method protocol, by the class name triptych/data/tasks.yaml gives it (the classes above).
PROTOCOLS: dict[str, type] = {task.name: globals()[task.method_protocol] for task in TASK_INFO}


def method_for_task(name: str, task: str, weights: str | Path | None = None) -> MethodSpec:
    """The registered method ``name``, checked to serve ``task``; with ``weights`` (a command's --weights
    FILE) passed as its factory's ``weights`` input, refused when its entry declares none (``triptych.inputs``)."""
    spec = registry().method(name)
    if spec.task != task:
        raise TriptychError(f"method {name!r} is a {spec.task} method, not a {task} one",
                            fix=f"see 'triptych list methods' for {task} methods")
    if weights is None:
        return spec
    if not spec.inputs.takes("weights"):
        raise TriptychError(f"method {name!r} takes no weights file", fix="leave out --weights")
    if not Path(weights).is_file():
        raise InputError(f"--weights {weights}: no such file", fix="pass a .safetensors, .pt or .pth checkpoint")
    return dataclasses.replace(spec, params={**spec.params, "weights": str(weights)})


def check_method_keys(spec: MethodSpec, invoked: Sequence[str] = ()) -> None:
    """The entry's ``params`` and the ``--param`` keys ``invoked`` (benchmark invocation keys the user set)
    must be parameters of the factory: a key it does not take is refused, never dropped."""
    factory = spec.load()
    check_factory_keys(spec.params, factory, "params", f"{spec.source} ({spec.callable})",
                       fix="fix the entry's params: a key the factory does not take is refused, not dropped")
    check_factory_keys(invoked, factory, "--param", f"method {spec.name!r}",
                       fix="leave it out: this method cannot be invoked with it")


def build_method(spec: MethodSpec, context: Any = None, invocation: dict[str, Any] | None = None) -> Any:
    """Instantiate a registered method and check that it implements its task's protocol.

    ``invocation`` holds the benchmark variant's parameters: a factory that declares one of them by name
    (AMT's ``pad_divisor`` / ``scale_factor``, as each AMT benchmark script invokes the model) receives the
    benchmark's value, which overrides the method entry's default (``score`` refuses a ``--param`` of an
    invocation key that the factory does not take). A method whose entry declares the input ``context``
    (``triptych.inputs``) receives the benchmark data. A key of the entry's ``params`` that the factory does
    not take is refused.
    """
    factory = spec.load()
    accepted = factory_parameters(factory) or ()
    check_method_keys(spec)
    kwargs = dict(spec.params)
    kwargs.update({k: v for k, v in (invocation or {}).items() if k in accepted})
    method = factory(**kwargs, **bind(spec.inputs, {"context": context}, f"method {spec.name!r}"))
    protocol = PROTOCOLS[spec.task]
    if not isinstance(method, protocol):
        raise TriptychError(f"method {spec.name!r} ({spec.callable}) does not implement {protocol.__name__}",
                            fix=f"give it the method documented in triptych.methods.{protocol.__name__}")
    return method


def read_reference(path: Path) -> torch.Tensor:
    """A reference photo as a ``Generator`` receives it: float32 (3, H, W) tensor in [0, 1] (uint8 / 255)."""
    import torch

    return torch.from_numpy(read_rgb(path)).permute(2, 0, 1).contiguous().to(torch.float32).div_(255.0)


def check_output(output: torch.Tensor, expected_shape: tuple[int, ...], method: str, sample_id: str) -> torch.Tensor:
    """A method's output must have the expected shape and be finite; say which method and sample if not."""
    import torch

    if not isinstance(output, torch.Tensor):
        raise TriptychError(f"method {method!r} returned {type(output).__name__} for sample {sample_id!r}",
                            fix="return a torch.Tensor (see triptych.methods)")
    if tuple(output.shape) != tuple(expected_shape):
        raise TriptychError(f"method {method!r} returned shape {tuple(output.shape)} for sample {sample_id!r}, "
                            f"expected {tuple(expected_shape)}", fix="keep the input's size and layout")
    if not torch.isfinite(output).all():
        raise TriptychError(f"method {method!r} returned NaN or Inf for sample {sample_id!r}",
                            fix="fix the method; triptych never scores non-finite outputs")
    return output.detach().to("cpu", torch.float32)
