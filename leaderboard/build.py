"""``triptych leaderboard build``: a static site that opens from ``file://`` with no server and no network.

Pages (jinja2 templates in ``leaderboard/templates``): an index, one page per task (benchmarks, and the
quality-vs-runtime plot where the published tables time the methods), one page per task and benchmark
(sortable table of reported and reproduced rows with difference and tolerance flag, provenance panels,
per-sample plots) and CSV / JSON downloads of every table. JavaScript is vendored
(``leaderboard/static/vendor``: vega, vega-lite, vega-embed) and copied into the site.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any, Iterator

import jinja2
import pandas as pd

import triptych
from triptych.atomic import atomic_write, atomic_write_text, write_error
from triptych.errors import TriptychError
from triptych.leaderboard import plots
from triptych.leaderboard.sitedata import TABLE_COLUMNS, BenchmarkPage, SiteData, load_site_data, slug
from triptych.task_list import TASK_TITLES
from triptych.published import subset_label
from triptych.results import json_safe

_PACKAGE = resources.files("triptych.leaderboard")
MARKER = ".triptych-site"  # written into every built site; a non-empty folder without it is never written into


@dataclass(frozen=True)
class Column:
    """One column of a sortable table: the field, its header, and whether it sorts as a number."""

    field: str
    header: str
    numeric: bool = False
    title: str = ""


BENCHMARK_COLUMNS = (
    Column("split", "split"), Column("method", "method"), Column("metric", "metric"),
    Column("metric_variant", "variant", title="metric variant (formula)"),
    Column("benchmark_variant", "bench. variant", title="benchmark variant (data preparation), reproduced rows"),
    Column("metric_version", "version", True, "metric version, reproduced rows"),
    Column("reported", "reported", True, "published value, raw scale"),
    Column("reproduced", "reproduced", True, "pooled mean over the run's samples"),
    Column("ci_low", "CI low", True, "bootstrap interval of the reproduced mean (run.json: level, method, "
           "resamples, seed), resampling the benchmark's sampling unit"),
    Column("ci_high", "CI high", True, "upper end of the interval"),
    Column("ci_unit", "resampled", title="the sampling unit the interval resamples (video, identity, triplet)"),
    Column("rank", "rank", title="rank range among reproduced rows: methods whose intervals overlap share ranks"),
    Column("n", "n", True, "samples in the reproduced mean"),
    Column("difference", "difference", True, "reproduced - reported"),
    Column("tolerance", "tolerance", True, "the metric's gate_tolerance (registry)"),
    Column("within_tolerance", "within tol.", title="|difference| <= tolerance"),
    Column("reported_table", "table", title="thesis table of the reported value"),
    Column("published_method", "published as", title="the published method a reproduced row is paired with"),
    Column("subset", "subset", title="reduced set scored with --subset (videos or triplets of the split)"),
    Column("pairing", "unpaired because", title="why a reproduced row pairs with no published row "
                                                "(README: Pairing rule)"),
    Column("run_id", "run", title="reproduced run: click for its provenance"),
)


ABLATION_COLUMNS = (
    Column("table", "table", title="thesis table"), Column("method", "method", title="ablation variant"),
    Column("benchmark", "benchmark"), Column("split", "split"), Column("metric", "metric"),
    Column("metric_variant", "variant", title="metric variant (formula)"),
    Column("reported", "reported", True, "published value, raw scale"),
    Column("note", "note", title="what the row changes; where the dataset or metric was inferred from the text"),
)


def efficiency_columns(frame: pd.DataFrame) -> list[Column]:
    """Method and table, then one numeric column per published efficiency figure, then the timing note."""
    fixed = {"task", "table", "method", "timing"}
    return [Column("method", "method"), Column("table", "table"),
            *(Column(c, c, True) for c in frame.columns if c not in fixed), Column("timing", "timing")]


def fmt(value: Any) -> str:
    """Display form of a cell: 6 significant digits for numbers, n/a for a missing value, yes / no for flags."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a" if not isinstance(value, str) else value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "inf" if value == math.inf else "-inf" if value == -math.inf else f"{value:.6g}"
    return str(value)


def sort_value(value: Any) -> str:
    """The ``data-value`` a cell sorts by (JavaScript ``Number()`` reads it; empty for a missing value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return "Infinity" if value == math.inf else "-Infinity" if value == -math.inf else repr(value)
    return str(value)


def _spec_json(spec: dict[str, Any]) -> str:
    """JSON safe to inline in a ``<script type="application/json">`` element."""
    return json.dumps(spec, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: NaN -> None, inf -> "inf" (docs/conventions.md), numpy scalars -> Python."""
    out = []
    for record in frame.to_dict("records"):
        clean = {}
        for key, value in record.items():
            if hasattr(value, "item"):
                value = value.item()
            if isinstance(value, float) and math.isnan(value):
                value = None
            clean[key] = value
        out.append(json_safe(clean))
    return out


def _environment() -> jinja2.Environment:
    def load(name: str) -> str:
        return (_PACKAGE / "templates" / name).read_text(encoding="utf-8")

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["fmt"] = fmt
    env.filters["sort_value"] = sort_value
    env.globals["task_titles"] = TASK_TITLES
    return env


def _provenance(run: dict[str, Any]) -> dict[str, Any]:
    """The provenance panel of one run, from its run JSON."""
    code = run.get("code") or {}
    data = run.get("data") or {}
    hardware = run.get("hardware") or {}
    return {
        "run_id": run["run_id"], "anchor": f"run-{run['run_id']}", "method": run.get("method", ""),
        "method_version": run.get("method_version", ""), "benchmark": run.get("benchmark", ""),
        "split": run.get("split", ""), "benchmark_variant": run.get("benchmark_variant", ""),
        "benchmark_version": run.get("benchmark_version", ""),
        "metrics": [{"metric": m.get("metric"), "variant": m.get("variant"), "version": m.get("version"),
                     "direction": m.get("direction"), "aggregate": (m.get("aggregate") or {}).get("value"),
                     "n": (m.get("aggregate") or {}).get("n")} for m in run.get("metrics", [])],
        "weights": [{"name": w.get("name", ""), "sha256": w.get("sha256", ""), "registered": w.get("registered")}
                    for w in run.get("weights", [])],
        "manifest": data.get("manifest", ""), "manifest_sha256": data.get("manifest_sha256", ""),
        "subset": subset_label(run),
        "git_revision": code.get("git_revision") or "unknown", "git_dirty": code.get("git_dirty"),
        "triptych_version": code.get("triptych_version", ""), "created": run.get("created_utc", ""),
        "finished": run.get("finished_utc", ""), "seed": run.get("seed"), "pred_dir": run.get("pred_dir"),
        "hardware": ", ".join(f"{k} {v}" for k, v in hardware.items() if v not in (None, "")),
        "packages": ", ".join(f"{k} {v}" for k, v in sorted((run.get("packages") or {}).items())),
    }


def _benchmark_plots(bench: BenchmarkPage) -> list[dict[str, Any]]:
    """Per-metric drill-down plots of a benchmark's reproduced runs (none when nothing was reproduced)."""
    out: list[dict[str, Any]] = []
    samples = bench.samples
    if samples.empty:
        return out
    for (metric, variant, unit), frame in samples.groupby(["metric", "metric_variant", "unit"], sort=True):
        label = f"{metric}:{variant}"
        rows = bench.table[(bench.table["metric"] == metric) & (bench.table["metric_variant"] == variant)
                           & bench.table["reproduced"].notna()]
        if len(rows):
            out.append({"kind": "interval", "title": f"{label}: mean and interval per run",
                        "caption": "Pooled mean of each reproduced run; the bar is its bootstrap interval over the "
                                   "benchmark's sampling unit (none where there are fewer than 2 units).",
                        "spec": _spec_json(plots.interval_plot(rows, metric, variant, unit))})
        per_sample, dropped = plots.per_sample_plot(frame, metric, variant, unit)
        distribution, _ = plots.distribution_plot(frame, metric, variant, unit)
        note = f" {dropped} infinite value(s) (identical frames) are not drawn." if dropped else ""
        out.append({"kind": "per-sample", "title": f"{label} per sample",
                    "caption": f"Each {frame['level'].iloc[0]}'s value, one line per method; pick the video or "
                               f"identity in the drop-down.{note}", "spec": _spec_json(per_sample)})
        out.append({"kind": "group-mean", "title": f"{label}: mean per video / identity",
                    "caption": "Pooled mean of the samples of each video or identity.",
                    "spec": _spec_json(plots.group_mean_plot(frame, metric, variant, unit))})
        out.append({"kind": "distribution", "title": f"{label}: distribution per method",
                    "caption": f"Box: quartiles and median, whiskers: min to max; ticks: every sample.{note}",
                    "spec": _spec_json(distribution)})
    for index, plot in enumerate(out):
        plot["id"] = f"plot-{index}"
    return out


def _iter_static(root: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for item in sorted(root.iterdir(), key=lambda p: p.name):
        if item.is_dir():
            yield from _iter_static(item, f"{prefix}{item.name}/")
        elif not item.name.startswith("."):
            yield f"{prefix}{item.name}", item


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise TriptychError(f"{out}: exists and is not a folder", fix="pass --out with a folder path")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise TriptychError(f"{out}: folder is not empty and holds no triptych site",
                            fix="choose an empty or new folder for --out (a previous site is rebuilt in place)")


class _Writer:
    """Writes the site's files atomically and remembers them."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: list[Path] = []

    def text(self, rel: str, text: str) -> None:
        self.files.append(atomic_write_text(self.out / rel, text))

    def table(self, stem: str, frame: pd.DataFrame, meta: dict[str, Any]) -> dict[str, str]:
        """``data/<stem>.csv`` and ``data/<stem>.json``; returns their site-relative paths."""
        csv_rel, json_rel = f"data/{stem}.csv", f"data/{stem}.json"
        self.files.append(atomic_write(self.out / csv_rel, lambda tmp: frame.to_csv(tmp, index=False)))
        self.text(json_rel, json.dumps({**meta, "columns": list(frame.columns), "rows": _records(frame)}, indent=1))
        return {"csv": csv_rel, "json": json_rel}


def build_site(results: str | Path, out: str | Path) -> Path:
    """Build the site of ``results`` into ``out``; returns the path of ``index.html``."""
    results, out = Path(results), Path(out)
    _check_out(out)
    site: SiteData = load_site_data(results)
    env = _environment()
    write = _Writer(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out, exc) from exc
    write.text(MARKER, "built by triptych leaderboard build\n")
    for rel, item in _iter_static(_PACKAGE / "static"):
        data = item.read_bytes()
        write.files.append(atomic_write(out / "static" / rel, lambda tmp, data=data: tmp.write_bytes(data)))

    run_by_id = {r["run_id"]: r for r in site.runs}
    tasks = site.tasks()
    common = {"tasks": tasks, "version": triptych.__version__,
              "results": str(results)}
    meta = {"generator": "triptych leaderboard build", "results": str(results)}

    everything = site.all_tables()
    downloads = write.table("leaderboard", everything, {**meta, "table": "all benchmarks"})
    efficiency_downloads = write.table("efficiency", site.efficiency_figures,
                                       {**meta, "table": "efficiency figures (reported)"})
    ablation_downloads = write.table("ablations", site.ablations, {**meta, "table": "ablation tables (reported)"})

    bench_pages = []
    for bench in site.benchmarks:
        stem = bench.page.removesuffix(".html")
        files = write.table(stem, bench.table, {**meta, "task": bench.task, "benchmark": bench.benchmark})
        panels = [_provenance(run_by_id[r]) for r in bench.run_ids if r in run_by_id]
        page_plots = _benchmark_plots(bench)
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
                for rec in bench.table.to_dict("records")]
        for row in rows:
            row["run_anchor"] = f"run-{row['run_id']}" if row["run_id"] else ""
        write.text(bench.page, env.get_template("benchmark.html").render(
            **common, page_title=f"{bench.benchmark} — {TASK_TITLES[bench.task]}", current=bench.task, bench=bench,
            columns=BENCHMARK_COLUMNS, rows=rows, panels=panels, plots=page_plots, downloads=files))
        bench_pages.append({"task": bench.task, "benchmark": bench.benchmark, "page": bench.page,
                            "splits": bench.splits, "reported": int(bench.table["reported"].notna().sum()),
                            "reproduced": int(bench.table["reproduced"].notna().sum()),
                            "paired": int(bench.table["difference"].notna().sum()),
                            "within": int((bench.table["within_tolerance"] == True).sum())})  # noqa: E712

    for task in tasks:
        efficiency = site.efficiency[site.efficiency["task"] == task]
        figures = site.efficiency_figures[site.efficiency_figures["task"] == task].dropna(axis=1, how="all")
        task_plots = []
        if len(efficiency):
            task_plots.append({"id": "plot-efficiency", "kind": "efficiency", "title": "Quality vs runtime",
                               "caption": "Published PSNR against published runtime (ms/frame, log scale) of the "
                                          "methods the thesis tables time; pick the benchmark in the drop-down.",
                               "spec": _spec_json(plots.efficiency_plot(efficiency))})
        write.text(f"{task}.html", env.get_template("task.html").render(
            **common, page_title=TASK_TITLES[task], current=task, task=task,
            benchmarks=[b for b in bench_pages if b["task"] == task], columns=efficiency_columns(figures),
            efficiency=figures.to_dict("records"), plots=task_plots,
            downloads=efficiency_downloads, ablation_columns=ABLATION_COLUMNS,
            ablations=_records(site.ablations[site.ablations["task"] == task]),
            ablation_downloads=ablation_downloads))

    write.text("index.html", env.get_template("index.html").render(
        **common, page_title="triptych leaderboard", current="index", benchmarks=bench_pages,
        runs=[{**_provenance(r), "page": next((b.page for b in site.benchmarks if r["run_id"] in b.run_ids), ""),
               "task": r.get("task", "")} for r in site.runs],
        downloads=downloads, plots=[]))
    return out / "index.html"


__all__ = ["build_site", "fmt", "sort_value", "slug", "TABLE_COLUMNS"]
