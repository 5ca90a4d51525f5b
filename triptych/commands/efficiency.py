"""``triptych efficiency --method M [--weights F] --size 1280x720 --runs N --out FILE.json [--results DIR]``

Parameters, FLOPs and median runtime of a frame interpolation method (thesis table 4.1's efficiency
columns), with the hardware, beside the published figures of the same method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

UNITS = {"params": "M", "flops": "TFLOPs", "runtime": "ms/frame"}  # the printed units of thesis_tables.csv


def reported_figures(method: str) -> list[dict[str, Any]]:
    """The thesis' efficiency rows (params, flops, runtime) of the method, matched case-insensitively."""
    from triptych.leaderboard.reported import load_reported

    rows = load_reported()
    keep = (rows["method"].str.lower() == method.lower()) & rows["metric"].isin(list(UNITS))
    return [{"metric": r["metric"], "value": r["value"], "unit": r["unit"], "split": r["split"], "note": r["note"]}
            for _, r in rows[keep].iterrows()]


def efficiency_document(method: str, weights: Path | None, size: str, runs: int, device: str) -> dict[str, Any]:
    """Build the method (registry weights, or ``weights``), measure it, and describe the result."""
    from triptych.baselines.efficiency import FLOP_COUNTER, measure_efficiency, parse_size
    from triptych.methods import build_method, method_for_task
    from triptych.provenance import code_revision, hardware, package_versions

    width, height = parse_size(size)
    spec = method_for_task(method, "frame_interpolation", weights)
    model = build_method(spec)
    result = measure_efficiency(model, width, height, runs, device)
    flops = result.flops
    return {
        "kind": "efficiency",
        "method": method, "method_version": spec.version, "weights": getattr(model, "weights", None),
        "size": {"width": width, "height": height}, "t": 0.5,
        "inputs": "two seeded uniform random frames (torch.Generator seed 0), float32 (3, H, W) in [0, 1]",
        "params": result.params, "params_millions": result.params / 1e6,
        "flops": flops, "macs": result.macs,
        "tflops": None if flops is None else flops / 1e12, "tmacs": None if flops is None else flops / 2e12,
        "flop_counter": FLOP_COUNTER, "flops_by_operator": result.flops_by_operator,
        "flops_note": (None if flops is not None else "no torch operator with a FLOP formula ran (OpenCV / numpy "
                       "work is invisible to FlopCounterMode); FLOPs not reported"),
        "runtime_ms": {"median": result.median_ms, "runs": runs, "values": result.runtimes_ms,
                       "warmup_runs": 1, "device": device, "statistic": "median wall time per call"},
        "reported": reported_figures(method),
        "hardware": hardware(), "packages": package_versions(), "code": code_revision(),
    }


def results_rows(doc: dict[str, Any], run_id: str) -> list[dict[str, Any]]:
    """The figures as rows of the results schema, in the thesis' printed units, so the leaderboard can put
    them beside the reported ones: params (variant ""), flops (variant ``flop_counter``: 2 FLOPs per
    multiply-add) and runtime (variant ``<device>-median``: other hardware than the thesis' RTX 3090)."""
    size = f"{doc['size']['width']}x{doc['size']['height']}"
    values = [("params", "", doc["params"] / 1e6), ("flops", "flop_counter", doc["tflops"]),
              ("runtime", f"{doc['runtime_ms']['device']}-median", doc["runtime_ms"]["median"])]
    return [{"run_id": run_id, "task": "frame_interpolation", "benchmark": "any", "split": size,
             "benchmark_variant": "", "method": doc["method"], "method_version": str(doc["method_version"]),
             "sample_id": size, "level": "set", "metric": metric, "metric_variant": variant, "metric_version": 1,
             "value": float(value), "unit": UNITS[metric]}
            for metric, variant, value in values if value is not None]


def write_run(results: Path, doc: dict[str, Any]) -> Path:
    from triptych.results import RunWriter, new_run_id

    writer = RunWriter(results, new_run_id(f"efficiency-{doc['method']}"))
    size = f"{doc['size']['width']}x{doc['size']['height']}"
    writer.begin({"task": "frame_interpolation", "benchmark": "any", "split": size, "benchmark_variant": "",
                  "method": doc["method"], "method_version": str(doc["method_version"]),
                  "weights": [doc["weights"]] if doc["weights"] else [], "data": None, "seed": 0})
    writer.add_rows(results_rows(doc, writer.run_id), part="part-000000")
    writer.finish({"efficiency": {k: doc[k] for k in ("flop_counter", "flops", "macs", "runtime_ms", "reported")}})
    return writer.run_dir


def register(app: typer.Typer) -> None:
    @app.command("efficiency")
    def efficiency_command(
        method: str = typer.Option(..., "--method", help="a registered frame_interpolation method"),
        out: Path = typer.Option(..., "--out", help="JSON file for the figures, the hardware and the thesis' values"),
        weights: Optional[Path] = typer.Option(None, "--weights", help="checkpoint replacing the registry weights "
                                               "(values do not change params or FLOPs)"),
        size: str = typer.Option("1280x720", "--size", help="frame size WIDTHxHEIGHT (the thesis: 1280x720)"),
        runs: int = typer.Option(10, "--runs", help="timed calls after one warm-up call; the median is reported"),
        device: str = typer.Option("cpu", "--device", help="cpu, or cuda for methods with torch modules"),
        results: Optional[Path] = typer.Option(None, "--results", help="also write a run (results schema) here"),
    ) -> None:
        """Parameters, FLOPs and median runtime of an interpolation method on a seeded pair."""
        import json
        import sys

        from triptych.atomic import atomic_write_text
        from triptych.results import json_safe

        doc = efficiency_document(method, weights, size, runs, device)
        atomic_write_text(out, json.dumps(json_safe(doc), indent=2, sort_keys=True))
        if results is not None:
            print(f"run written to {write_run(results, doc)}", file=sys.stderr)
        flops = "n/a" if doc["flops"] is None else f"{doc['tflops']:.4g} TFLOPs ({doc['tmacs']:.4g} T MACs)"
        typer.echo(f"{method} @ {doc['size']['width']}x{doc['size']['height']}: {doc['params_millions']:.2f}M "
                   f"params, {flops}, median {doc['runtime_ms']['median']:.1f} ms on {device} "
                   f"({runs} runs); written to {out}")
