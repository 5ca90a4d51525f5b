"""The catalogue page is generated, never hand-edited: ``docs/metrics.md`` equals ``triptych catalogue``'s
output for the current registry and ``docs/metric_speed.json``, and lists every registered metric variant."""

from __future__ import annotations

from conftest import REPO
from triptych.commands.catalogue import DASH, catalogue_markdown, read_speeds
from triptych.registry import registry


def test_docs_metrics_md_is_the_generators_output():
    want = catalogue_markdown(registry(), read_speeds(REPO / "docs/metric_speed.json"))
    got = (REPO / "docs/metrics.md").read_text(encoding="utf-8")
    assert got == want, "docs/metrics.md is stale: run 'triptych catalogue' (after the perf suite if speeds changed)"


def test_every_variant_has_a_row_with_its_speed_or_a_dash():
    speeds = read_speeds(REPO / "docs/metric_speed.json")
    text = catalogue_markdown(registry(), speeds)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    keys = [(s.name, v.name) for s in registry().metrics.values() for v in s.variants.values()]
    assert len(rows) == len(keys)
    for row, (metric, variant) in zip(rows, keys):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0] == f"`{metric}`" and cells[1].startswith(f"`{variant}`")
        ms = speeds["ms_per_frame"].get(f"{metric}:{variant}")
        assert cells[-1] == (DASH if ms is None else f"{ms:.1f}")


def test_cli_writes_the_page(tmp_path, run_cli):
    out = tmp_path / "metrics.md"
    code, _, err = run_cli("catalogue", "--out", out, "--speeds", REPO / "docs/metric_speed.json")
    assert code == 0, err
    assert out.read_text(encoding="utf-8") == (REPO / "docs/metrics.md").read_text(encoding="utf-8")
