"""``triptych efficiency --method M [--weights F] [--size WxH] [--frames N] --runs N --out FILE.json [--results DIR]``

Parameters, FLOPs and median runtime of a method (the efficiency columns of thesis tables 3.1 and 4.1), with
the hardware, beside the published figures of the same method and the convention each was counted in.
A reference model (AMT, E2FGVI, PhotoMaker) is counted from its architecture alone, no checkpoint needed
(``baselines.architecture_cost``); its runtime uses the registry weights when present, the ``--weights``
file when given, else a random initialisation (recorded: the time is the architecture's, the outputs are
meaningless). Any other interpolation method is measured by calling it (``baselines.efficiency``).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Optional

import typer

from triptych.task_list import FLOPS_UNITS

DEFAULT_SIZE = "1280x720"  # the thesis' size for interpolation methods without an architecture of their own


def reported_figures(method: str) -> list[dict[str, Any]]:
    """The thesis' efficiency rows (params, flops, runtime) of the method: its published label from the
    method-identity mapping (``triptych.published``), else its name, matched case-insensitively; each with
    the counting convention of the published number."""
    from triptych.baselines.architecture_cost import PUBLISHED_CONVENTIONS
    from triptych.leaderboard.reported import load_reported
    from triptych.published import published_methods

    entry = published_methods().get(method)
    label = entry.label if entry is not None else method
    rows = load_reported()
    keep = (rows["method"].str.lower() == label.lower()) & rows["metric"].isin(["params", "flops", "runtime"])
    family = next((f for f in PUBLISHED_CONVENTIONS if label.lower().startswith(f)), None)
    return [{"metric": r["metric"], "value": r["value"], "unit": r["unit"], "split": r["split"], "note": r["note"],
             "convention": (PUBLISHED_CONVENTIONS[family] if r["metric"] == "flops" and family else
                            "parameters of the network" if r["metric"] == "params" else r["note"])}
            for _, r in rows[keep].iterrows()]


def _runtime_method(method: str, task: str, weights: Path | None, device: str) -> tuple[Any, Any]:
    """(method object, weights record) for timing: the given file, the registry weights when all are present,
    else the reference architecture with a random initialisation."""
    from triptych import weights as w
    from triptych.baselines.architecture_cost import reference_of
    from triptych.errors import TriptychError
    from triptych.methods import build_method, method_for_task

    spec = method_for_task(method, task, weights)
    if weights is not None or all(w.is_present(w.get_spec(name)) for name in spec.weights):
        model = build_method(spec)
        return model, getattr(model, "weights", None)
    reference = reference_of(method)
    if reference is None or reference.random is None:
        raise TriptychError(f"{method}: timing needs its weights ({', '.join(spec.weights)}), which are not here",
                            fix=("time PhotoMaker with 'triptych generate', which records the seconds per image, "
                                 "or pass --runs 0 to count only" if task == "personalization" else
                                 "import them (triptych weights import NAME FILE), or pass --runs 0 to count only"))
    return reference.random(device), {"random_initialisation": "torch seed 0; times the architecture only"}


def efficiency_document(method: str, weights: Path | None, size: str | None, runs: int, device: str,
                        frames: int = 70) -> dict[str, Any]:
    """Count (architecture, or a measured call) and time the method; describe the result."""
    from triptych.baselines.architecture_cost import CONVENTION, architecture_figures, reference_of
    from triptych.baselines.efficiency import (FLOP_COUNTER, measure_efficiency, move_to, parse_size, seeded_pair,
                                               seeded_video, time_calls)
    from triptych.errors import InputError
    from triptych.provenance import code_revision, hardware, package_versions
    from triptych.registry import registry

    spec = registry().method(method)
    if runs < 0:
        raise InputError(f"--runs {runs}: a count of timed runs cannot be negative",
                         fix="pass e.g. --runs 10, or --runs 0 to count only")
    wh = parse_size(size) if size is not None else None
    doc: dict[str, Any] = {"kind": "efficiency", "method": method, "method_version": spec.version, "task": spec.task}
    if reference_of(method) is not None:
        # what to time is settled first: a missing checkpoint with no random stand-in stops before any counting
        timed, weights_record = (_runtime_method(method, spec.task, weights, device) if runs else (None, None))
        options = {"frames": frames} if spec.task == "video_inpainting" else {}
        figures = architecture_figures(method, *(wh or (None, None)), **options)
        width, height = figures.width, figures.height
        by_op: dict[str, float] = {}
        for part in figures.parts:
            for op, macs in part.macs_by_operator.items():
                by_op[op] = by_op.get(op, 0) + 2 * macs * part.calls
        doc.update({"params": figures.params, "macs": figures.macs, "flops": figures.flops,
                    "flop_counter": CONVENTION, "flops_by_operator": by_op, "architecture": figures.document(),
                    "unit": figures.unit})
    else:
        if spec.task != "frame_interpolation":
            raise InputError(f"method {method!r} is not a reference model, and only interpolation methods are "
                             "measured by calling them", fix="count a reference model (amt-s, e2fgvi, photomaker-v1)")
        width, height = wh or parse_size(DEFAULT_SIZE)
        timed, weights_record = _runtime_method(method, spec.task, weights, device)
        result = measure_efficiency(timed, width, height, runs, device)
        doc.update({"params": result.params, "macs": result.macs, "flops": result.flops,
                    "flop_counter": FLOP_COUNTER, "flops_by_operator": result.flops_by_operator,
                    "unit": "interpolated frame"})
        runtimes = result.runtimes_ms
        timed = None
    if timed is not None:
        move_to(timed, device)
        if spec.task == "video_inpainting":
            video, masks = seeded_video(width, height, frames)
            runtimes = [ms / frames for ms in time_calls(lambda: timed.inpaint(video, masks), runs + 1, device)[1:]]
        else:
            frame0, frame1 = seeded_pair(width, height)
            runtimes = time_calls(lambda: timed.interpolate(frame0, frame1, 0.5), runs + 1, device)[1:]
    elif runs == 0:
        runtimes = []
    flops = doc["flops"]
    doc.update({
        "weights": weights_record, "size": {"width": width, "height": height}, "t": 0.5,
        "inputs": ("a seeded uniform random video (torch.Generator seed 0) with a centred half-size hole, "
                   f"{frames} frames" if spec.task == "video_inpainting" else
                   "two seeded uniform random frames (torch.Generator seed 0), float32 (3, H, W) in [0, 1]"),
        "params_millions": doc["params"] / 1e6,
        "tflops": None if flops is None else flops / 1e12, "tmacs": None if flops is None else flops / 2e12,
        "flops_note": (None if flops is not None else "no torch operator with a FLOP formula ran (OpenCV / numpy "
                       "work is invisible to FlopCounterMode); FLOPs not reported"),
        "runtime_ms": None if not runtimes else {
            "median": float(statistics.median(runtimes)), "runs": runs, "values": runtimes, "warmup_runs": 1, "device": device,
            "statistic": "median wall time per " + ("frame (whole video / frames)" if spec.task == "video_inpainting"
                                                    else "call")},
        "reported": reported_figures(method),
        "hardware": hardware(), "packages": package_versions(), "code": code_revision(),
    })
    return doc


def run_meta(doc: dict[str, Any]) -> dict[str, Any]:
    """The run metadata of the figures (``triptych.results.run_metadata``): benchmark ``any``, split the frame size."""
    from triptych.results import run_metadata

    size = f"{doc['size']['width']}x{doc['size']['height']}"
    return run_metadata(doc["task"], "any", size, "", doc["method"], str(doc["method_version"]),
                        weights=[doc["weights"]] if doc["weights"] else [], data=None, seed=0)


def results_rows(doc: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
    """The figures as rows of the results schema, in the thesis' printed units, so the leaderboard can put
    them beside the reported ones: params (variant ""), flops (variant ``flop_counter``: 2 FLOPs per
    multiply-add) and runtime (variant ``<device>-median``: other hardware than the thesis')."""
    from triptych.results import result_row

    run = run_meta(doc)
    unit, scale = FLOPS_UNITS[doc["task"]]
    runtime = doc["runtime_ms"]
    values = [("params", "", doc["params"] / 1e6, "M"),
              ("flops", "flop_counter", None if doc["flops"] is None else doc["flops"] / scale, unit),
              ("runtime", f"{runtime['device']}-median" if runtime else "", runtime and runtime["median"], "ms/frame")]
    return [result_row(run_id, run, run["split"], "set", metric, variant, 1, float(value), unit_)
            for metric, variant, value, unit_ in values if value is not None]


def write_run(results: Path, doc: dict[str, Any]) -> Path:
    from triptych.results import RunWriter, new_run_id

    writer = RunWriter(results, new_run_id(f"efficiency-{doc['method']}"))
    writer.begin(run_meta(doc))
    writer.add_rows(results_rows(doc, writer.run_id), part="part-000000")
    writer.finish({"efficiency": {k: doc[k] for k in ("flop_counter", "flops", "macs", "runtime_ms", "reported")}})
    return writer.run_dir


def register(app: typer.Typer) -> None:
    @app.command("efficiency")
    def efficiency_command(
        method: str = typer.Option(..., "--method", help="a reference model (amt-s, e2fgvi, photomaker-v1, ...) or "
                                   "any registered frame_interpolation method"),
        out: Path = typer.Option(..., "--out", help="JSON file for the figures, the hardware and the thesis' values"),
        weights: Optional[Path] = typer.Option(None, "--weights", help="checkpoint to time instead of the registry "
                                               "weights (values change neither params nor FLOPs)"),
        size: Optional[str] = typer.Option(None, "--size", help="frame size WIDTHxHEIGHT (default: the thesis' size: "
                                           "AMT 1280x720, E2FGVI 432x240, PhotoMaker 1024x1024)"),
        frames: int = typer.Option(70, "--frames", help="video completion: the video length of the per-frame "
                                   "protocol cost and runtime (70 ~ DAVIS test-50's mean, 3,455 / 50 frames)"),
        runs: int = typer.Option(10, "--runs", help="timed calls after one warm-up call (median reported); 0: "
                                 "count only"),
        device: str = typer.Option("cpu", "--device", help="cpu, or cuda for methods with torch modules"),
        results: Optional[Path] = typer.Option(None, "--results", help="also write a run (results schema) here"),
    ) -> None:
        """Parameters, FLOPs (from the architecture) and median runtime of a method."""
        import json
        import sys

        from triptych.atomic import atomic_write_text
        from triptych.results import json_safe

        doc = efficiency_document(method, weights, size, runs, device, frames)
        atomic_write_text(out, json.dumps(json_safe(doc), indent=2, sort_keys=True))
        if results is not None:
            print(f"run written to {write_run(results, doc)}", file=sys.stderr)
        flops = "n/a" if doc["flops"] is None else f"{doc['tflops']:.4g} TFLOPs ({doc['tmacs']:.4g} T MACs)"
        runtime = ("not timed (--runs 0)" if doc["runtime_ms"] is None else
                   f"median {doc['runtime_ms']['median']:.1f} ms on {device} ({runs} runs)")
        typer.echo(f"{method} @ {doc['size']['width']}x{doc['size']['height']} per {doc['unit']}: "
                   f"{doc['params_millions']:.2f}M params, {flops}, {runtime}; written to {out}")
        for figure in doc["reported"]:
            typer.echo(f"  published {figure['metric']} {figure['value']:g} {figure['unit']} ({figure['split']}): "
                       f"{figure['convention']}")
