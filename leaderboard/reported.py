"""The published numbers of the thesis as leaderboard rows: the main tables (3.1, 4.1, 4.2, 5.4, 5.5,
``data/thesis_tables.csv``) and, apart, the ablation tables (3.2-3.5, 4.3-4.9, 5.6-5.7,
``data/thesis_ablations.csv``).

Values are stored raw, as triptych computes them: the packaged mapping ``reported_variants.yaml``
gives each row its metric variant and the scale from the printed unit (x1e-2, %) to the raw value.
Ablation models were trained differently from the main-table ones (E2FGVI's full model is 32.35 dB on
DAVIS in table 3.2, 33.01 in table 3.1), so their rows are never merged into the main ones and never
pair with a reproduced row: they are a section of their own (``load_ablations``).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import pandas as pd
import yaml

from triptych.errors import TriptychError

_DATA = resources.files("triptych.leaderboard") / "data"


def _rules() -> list[dict[str, Any]]:
    return yaml.safe_load((_DATA / "reported_variants.yaml").read_text(encoding="utf-8"))


def _match(row: pd.Series, rules: list[dict[str, Any]]) -> dict[str, Any]:
    for rule in rules:
        if all(str(row[k]) == str(rule[k]) for k in ("table", "benchmark", "split", "metric") if k in rule):
            return rule
    raise TriptychError(f"reported row {row['table']}/{row['benchmark']}/{row['split']}/{row['metric']} has no "
                        "variant mapping", fix="add a rule to leaderboard/data/reported_variants.yaml")


def load_reported() -> pd.DataFrame:
    """One row per published number of the main tables, with ``metric_variant``, raw ``value`` and the
    printed value kept. ``value`` is NaN only where the table prints no number (its ``note`` says why).
    """
    return _load_table("thesis_tables.csv")


def load_ablations() -> pd.DataFrame:
    """The ablation tables' numbers, in the columns of ``load_reported`` (``source`` is ``ablation``).
    Their notes say where a dataset or metric was inferred from the thesis text."""
    table = _load_table("thesis_ablations.csv")
    table["source"] = "ablation"
    return table


def _load_table(csv_name: str) -> pd.DataFrame:
    with (_DATA / csv_name).open(encoding="utf-8") as handle:
        table = pd.read_csv(handle, dtype={"table": str}, keep_default_na=False)
    rules = _rules()
    out = []
    for _, row in table.iterrows():
        rule = _match(row, rules)
        # an empty value is a published "not available" (e.g. out of memory): kept, with its note
        printed = float(row["value"]) if row["value"] != "" else float("nan")
        out.append({
            "source": "reported", "table": row["table"], "task": row["task"], "benchmark": row["benchmark"],
            "split": row["split"], "method": row["method"], "metric": row["metric"],
            "metric_variant": rule["variant"] or "", "value": printed * float(rule["scale"]),
            "unit": rule.get("unit", row["unit"]), "printed_value": printed, "printed_unit": row["unit"],
            "note": "; ".join(x for x in (row["note"], rule.get("note", "")) if x),
        })
    return pd.DataFrame(out)
