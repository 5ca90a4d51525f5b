"""Vega-Lite specifications of the site's plots, built as plain dicts from the site data.

Data are inlined (``data.values``), so the pages need neither a server nor a network: the vendored
vega-embed renders them from ``file://``. inf values (PSNR of identical frames) cannot be drawn and are
left out of the per-sample plots; each caption says how many.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"  # an identifier only: nothing is fetched
WIDTH = 640


def _finite(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    finite = frame["value"].map(lambda v: math.isfinite(float(v)))
    return frame[finite], int((~finite).sum())


def _axis_title(metric: str, variant: str, unit: str) -> str:
    return f"{metric}:{variant}" + (f" ({unit})" if unit else "")


def per_sample_plot(samples: pd.DataFrame, metric: str, variant: str, unit: str) -> tuple[dict[str, Any], int]:
    """Value per item (frame, triplet, image) of one video / identity, one line per method.

    A drop-down (a Vega-Lite parameter bound to a select) picks the video or identity: the drill-down.
    """
    data, dropped = _finite(samples)
    groups = sorted(set(data["group"]))
    values = data[["method", "run_id", "group", "item", "sample_id", "value"]].to_dict("records")
    spec: dict[str, Any] = {
        "$schema": SCHEMA, "width": WIDTH, "height": 260, "data": {"values": values},
        "mark": {"type": "line", "point": True, "tooltip": True},
        "encoding": {
            "x": {"field": "item", "type": "ordinal", "title": "sample", "sort": "ascending"},
            "y": {"field": "value", "type": "quantitative", "title": _axis_title(metric, variant, unit),
                  "scale": {"zero": False}},
            "color": {"field": "method", "type": "nominal"},
            "tooltip": [{"field": "sample_id"}, {"field": "method"}, {"field": "value", "format": ".6g"},
                        {"field": "run_id"}],
        },
    }
    if len(groups) > 1 or (groups and groups[0]):
        spec["params"] = [{"name": "group", "value": groups[0],
                           "bind": {"input": "select", "options": groups, "name": "video / identity "}}]
        spec["transform"] = [{"filter": "datum.group === group"}]
    return spec, dropped


def distribution_plot(samples: pd.DataFrame, metric: str, variant: str, unit: str) -> tuple[dict[str, Any], int]:
    """The distribution of per-sample values, one box per method (whiskers: min-max), every sample a tick."""
    data, dropped = _finite(samples)
    values = data[["method", "sample_id", "value"]].to_dict("records")
    x = {"field": "value", "type": "quantitative", "title": _axis_title(metric, variant, unit),
         "scale": {"zero": False}}
    y = {"field": "method", "type": "nominal", "title": None}
    spec = {
        "$schema": SCHEMA, "width": WIDTH, "data": {"values": values},
        "layer": [
            {"mark": {"type": "boxplot", "extent": "min-max", "opacity": 0.5}, "encoding": {"x": x, "y": y}},
            {"mark": {"type": "tick", "opacity": 0.6, "tooltip": True},
             "encoding": {"x": x, "y": y, "color": {"field": "method", "type": "nominal", "legend": None},
                          "tooltip": [{"field": "sample_id"}, {"field": "value", "format": ".6g"}]}},
        ],
    }
    return spec, dropped


def group_mean_plot(samples: pd.DataFrame, metric: str, variant: str, unit: str) -> dict[str, Any]:
    """Mean per video / identity and method (pooled within the group), as grouped bars."""
    data, _ = _finite(samples)
    means = data.groupby(["method", "group"], as_index=False)["value"].mean()
    return {
        "$schema": SCHEMA, "width": WIDTH, "data": {"values": means.to_dict("records")},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "group", "type": "nominal", "title": "video / identity"},
            "yOffset": {"field": "method"},
            "x": {"field": "value", "type": "quantitative", "title": "mean " + _axis_title(metric, variant, unit)},
            "color": {"field": "method", "type": "nominal"},
            "tooltip": [{"field": "group"}, {"field": "method"}, {"field": "value", "format": ".6g"}],
        },
    }


def interval_plot(rows: pd.DataFrame, metric: str, variant: str, unit: str) -> dict[str, Any]:
    """Each reproduced run's pooled mean (point) with its bootstrap interval (error bar), one line per run."""
    records = [{"method": r["method"], "run_id": r["run_id"], "label": f"{r['method']} ({r['run_id'][-6:]})",
                "value": r["reproduced"], "low": r["ci_low"],
                "high": r["ci_high"], "unit": r["ci_unit"], "rank": r["rank"]}
               for r in rows.to_dict("records") if math.isfinite(float(r["reproduced"]))]
    x = {"field": "value", "type": "quantitative", "title": _axis_title(metric, variant, unit),
         "scale": {"zero": False}}
    y = {"field": "label", "type": "nominal", "title": None}
    tooltip = [{"field": "method"}, {"field": "value", "format": ".6g"}, {"field": "low", "format": ".6g"},
               {"field": "high", "format": ".6g"}, {"field": "unit", "title": "resampled"}, {"field": "rank"},
               {"field": "run_id"}]
    return {
        "$schema": SCHEMA, "width": WIDTH, "data": {"values": records},
        "layer": [
            {"transform": [{"filter": "datum.low != null"}], "mark": {"type": "errorbar", "ticks": True},
             "encoding": {"x": {**x, "field": "low"}, "x2": {"field": "high"}, "y": y}},
            {"mark": {"type": "point", "filled": True, "size": 70, "tooltip": True},
             "encoding": {"x": x, "y": y, "color": {"field": "method", "type": "nominal"}, "tooltip": tooltip}},
        ],
    }


def efficiency_plot(efficiency: pd.DataFrame) -> dict[str, Any]:
    """Quality (PSNR) against runtime (ms/frame, log scale) of the published methods of one task.

    A drop-down picks the benchmark the PSNR is taken from.
    """
    counts = efficiency.groupby("benchmark", sort=False)["method"].nunique()
    benchmarks = list(counts.sort_values(ascending=False, kind="stable").index)  # most methods; ties: table order
    values = efficiency[["method", "table", "runtime_ms", "benchmark", "psnr", "runtime_note"]].to_dict("records")
    encoding = {
        "x": {"field": "runtime_ms", "type": "quantitative", "scale": {"type": "log"},
              "title": "runtime (ms/frame, log scale)"},
        "y": {"field": "psnr", "type": "quantitative", "scale": {"zero": False}, "title": "PSNR (dB)"},
    }
    return {
        "$schema": SCHEMA, "width": WIDTH, "height": 380, "data": {"values": values},
        "params": [{"name": "bench", "value": benchmarks[0],
                    "bind": {"input": "select", "options": benchmarks, "name": "PSNR on "}}],
        "transform": [{"filter": "datum.benchmark === bench"}],
        "layer": [
            {"mark": {"type": "point", "filled": True, "size": 70, "tooltip": True},
             "encoding": {**encoding, "color": {"field": "method", "type": "nominal", "legend": None},
                          "tooltip": [{"field": "method"}, {"field": "runtime_ms", "title": "ms/frame"},
                                      {"field": "psnr", "title": "PSNR"}, {"field": "table"},
                                      {"field": "runtime_note", "title": "timing"}]}},
            {"mark": {"type": "text", "dx": 6, "align": "left", "fontSize": 11},
             "encoding": {**encoding, "text": {"field": "method"}}},
        ],
    }
