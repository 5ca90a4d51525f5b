"""The packaged method-identity mapping (baselines/specs/published_methods.yaml, triptych.published): every
entry names a registered method, registered weights, published rows that exist, and a benchmark variant of
its tables' benchmarks; the pairing rule refuses what is not the published checkpoint on the full split.
(The end-to-end pairing of a real run: tests/leaderboard/test_pairing.py.)"""

from __future__ import annotations

import pytest

from triptych.errors import TriptychError
from triptych.leaderboard.reported import load_reported
from triptych.published import PublishedMethod, parse_published, published_methods, run_pairing, table_reason
from triptych.registry import registry
from triptych.weights import weights_registry


def test_every_entry_names_registered_methods_weights_and_published_rows() -> None:
    reported = load_reported()
    reg = registry()
    mapping = published_methods()
    assert {"amt-s", "amt-l", "amt-g", "amt-s-gopro", "e2fgvi"} <= set(mapping)
    for method, entry in mapping.items():
        spec = reg.method(method)
        assert set(entry.weights) == set(spec.weights), method  # the method loads exactly those files
        assert set(entry.weights) <= set(weights_registry())
        for table, variant in entry.tables.items():
            rows = reported[(reported["table"] == table) & (reported["method"] == entry.label)]
            assert len(rows), f"{method}: no published {entry.label!r} row in table {table}"
            quality = rows[rows["metric_variant"] != ""]
            for name in {f"{b}/{s}" if f"{b}/{s}" in reg.benchmarks else b
                         for b, s in zip(quality["benchmark"], quality["split"])}:
                if name in reg.benchmarks:
                    assert variant in reg.benchmark(name).variants, (method, table, name)


def test_gopro_rows_pair_with_the_gopro_checkpoint_only() -> None:
    mapping = published_methods()
    assert mapping["amt-s-gopro"].label == mapping["amt-s"].label == "AMT-S"
    assert set(mapping["amt-s-gopro"].tables) == {"4.2"} and "4.2" not in mapping["amt-s"].tables
    assert mapping["amt-s-gopro"].weights == ("amt_s_gopro",)
    assert registry().method("amt-s-gopro").weights == ("amt_s_gopro",)


PINNED = "ab" * 32
MAPPING = {"m": PublishedMethod("m", "M", ("amt_s",), {"4.1": "amt"})}


@pytest.fixture()
def pinned(monkeypatch):
    """The entry's published sha256 is ``PINNED`` (as a first-use pin in a private TRIPTYCH_HOME would be)."""
    monkeypatch.setattr("triptych.published._pin", lambda name: (PINNED, "test"))


def _run(**extra):
    return {"method": "m", "split": "test", "benchmark_variant": "amt", "pred_dir": None,
            "weights": [{"name": "amt_s", "sha256": PINNED, "registered": True}], "data": {}, **extra}


@pytest.mark.parametrize("run, words", [
    (_run(), None),
    (_run(method="other"), "has no published counterpart"),
    (_run(pred_dir="/p"), "prediction folder"),
    (_run(weights=[{"name": None, "sha256": "cd" * 32, "user_supplied": True, "replaces": ["amt_s"]}]),
     "user weights (sha256 cdcdcdcdcdcd): not the published checkpoint 'amt_s'"),
    (_run(weights=[]), "no file with that sha256 was recorded"),
    (_run(data={"subset": {"count": 6, "of": 3782}}), "subset 6/3782 of split 'test'"),
])
def test_the_rule_names_why_a_run_does_not_pair(pinned, run, words) -> None:
    pairing = run_pairing(run, MAPPING)
    if words is None:
        assert pairing.eligible and pairing.label == "M" and table_reason(pairing, "4.1", "amt") == ""
    else:
        assert not pairing.eligible and words in pairing.reason
        assert table_reason(pairing, "4.1", "amt") == pairing.reason


def test_another_table_or_variant_does_not_pair(pinned) -> None:
    pairing = run_pairing(_run(), MAPPING)
    assert "pairs with table(s) 4.1, not 4.2" in table_reason(pairing, "4.2", "amt")
    assert "benchmark variant 'x': table 4.1 was measured with 'amt'" in table_reason(pairing, "4.1", "x")


def test_unpinned_weights_never_recorded_cannot_pair(monkeypatch) -> None:
    monkeypatch.setattr("triptych.published._pin", lambda name: (None, "unpinned"))
    assert "unpinned and no sha256 was ever recorded" in run_pairing(_run(), MAPPING).reason


@pytest.mark.parametrize("doc, words", [
    ([], "expected a mapping"),
    ({"m": {"label": "M", "weights": ["w"]}}, "missing field(s) ['tables']"),
    ({"m": {"label": "M", "weights": ["w"], "tables": {"4.1": "amt"}, "extra": 1}}, "unknown field(s) ['extra']"),
    ({"m": {"label": "M", "weights": [], "tables": {"4.1": "amt"}}}, "non-empty list"),
    ({"m": {"label": "M", "weights": ["w"], "tables": {}}}, "tables must map"),
])
def test_a_malformed_mapping_is_refused(doc, words) -> None:
    with pytest.raises(TriptychError) as info:
        parse_published(doc, "x.yaml")
    assert words in info.value.message
