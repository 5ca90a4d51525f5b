"""``triptych measure METRIC --pred PATH --gt PATH ...``"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from triptych.commands import progress_options, threads_option


def _write_run(results: Path, m) -> Path:
    from triptych.results import RunWriter, new_run_id, result_row, run_metadata

    writer = RunWriter(results, new_run_id(f"measure-{m.metric.name}"))
    writer.begin(run_metadata("adhoc", "adhoc", "adhoc", "", "pred", "", inputs=m.document()["inputs"],
                              weights=[m.weights] if m.weights else [], data=None, seed=None))
    # a set-level metric (VFID) is one row for the whole set (docs/conventions.md); others, one row per sample
    values = ([(Path(m.inputs.gt or m.inputs.pred).name, m.aggregate.compute())] if m.metric.level == "set"
              else m.per_sample)
    rows = [result_row(writer.run_id, writer.meta, sid, m.metric.level, m.metric.name, m.variant_label,
                       m.variant.version, value, m.metric.unit) for sid, value in values]
    writer.add_rows(rows, part="part-000000")
    writer.finish({"metrics": [{"metric": m.metric.name, "variant": m.variant_label,
                                "version": m.variant.version, "aggregate": m.document()["aggregate"]}]})
    return writer.run_dir


def register(app: typer.Typer) -> None:
    @app.command("measure")
    def measure_command(
        metric: str = typer.Argument(..., help="metric name, e.g. psnr, ssim (see 'triptych list metrics')"),
        pred: Path = typer.Option(..., "--pred", help="prediction file or folder (PNG/JPEG, or .npy float32 CHW)"),
        gt: Optional[Path] = typer.Option(None, "--gt", help="ground-truth file or folder, paired by relative path "
                                          "(not for metrics without one, such as face_div)"),
        variant: Optional[str] = typer.Option(None, "--variant", help="metric variant (required when several)"),
        mask: Optional[Path] = typer.Option(None, "--mask", help="hole masks, taken as given (>0 = hole)"),
        weights: Optional[Path] = typer.Option(None, "--weights", help="your own trunk for a learned metric (lpips, "
                                               "dists, fid, ...): recorded with its sha256, rows labelled "
                                               "VARIANT+user-<sha8>"),
        flow_dir: Optional[Path] = typer.Option(None, "--flow-dir", help="stored flows (E_warp 'files' backend)"),
        clip_len: Optional[int] = typer.Option(None, "--clip-len", help="cut videos into clips of N frames"),
        clip_stride: Optional[int] = typer.Option(None, "--clip-stride", help="stride between clip starts"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
        out: Optional[Path] = typer.Option(None, "--out", help="also write a run (Parquet + run JSON) here"),
        progress: bool = progress_options.progress, quiet: bool = progress_options.quiet,
        threads: Optional[int] = threads_option,
    ) -> None:
        """Score your own frames with one named metric variant, exactly as the reference computes it.
        Progress is shown on a terminal; Ctrl-C prints the command that runs it again."""
        from triptych.measure import MeasureInputs, measure
        from triptych.progress import interrupted_line, set_mode

        set_mode(progress, quiet)
        inputs = MeasureInputs(pred, gt, mask, weights, flow_dir, clip_len, clip_stride)
        try:
            result = measure(metric, variant, inputs, threads)
        except KeyboardInterrupt:
            print(interrupted_line("nothing saved (measure writes its result once every sample is scored)",
                                   resume=False), file=sys.stderr, flush=True)
            raise
        if out is not None:
            run_dir = _write_run(out, result)
            print(f"run written to {run_dir}", file=sys.stderr)
        doc = result.document()
        if as_json:
            sys.stdout.write(json.dumps(doc) + "\n")
            return
        console = Console()
        for row in doc["per_sample"]:
            console.print(f"{row['sample_id']}\t{row['value']}")
        agg = doc["aggregate"]
        console.print(f"[bold]{metric}[/bold] ({result.variant_label} v{result.variant.version}): "
                      f"{agg['value']} = {agg['reduction']}, n={agg['n']}")
