"""The registry is data: YAML entries -> typed specs, clear errors for unknown names and bad entries."""

from __future__ import annotations

import re

import pytest

from triptych.errors import TriptychError, UnknownNameError
from triptych.registry import _parse_metric, registry


def test_metrics_resolve_to_callables_with_versions():
    reg = registry()
    for name in ("psnr", "ssim"):
        spec = reg.metric(name)
        assert spec.default_variant is None and len(spec.variants) >= 2
        for variant in spec.variants.values():
            assert callable(variant.load()) and variant.version >= 1 and variant.protocol
    assert set(reg.metric("ssim").variants) >= {"win65", "matlab3d"}
    assert set(reg.metric("psnr").variants) >= {"e2fgvi", "amt"}


def test_unknown_names_list_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'psnr'"):
        registry().metric("psrn")
    with pytest.raises(UnknownNameError, match="use one of: win65, matlab3d"):
        registry().metric("ssim").variant("gaussian")


def test_no_silent_default_variant():
    with pytest.raises(TriptychError, match=r"has \d+ variants and no default"):
        registry().metric("ssim").variant(None)


def test_bad_yaml_entries_are_rejected_with_their_location():
    good = {"description": "d", "kind": "paired_image", "level": "frame", "direction": "higher", "tasks": [],
            "gate_tolerance": 0.1, "variants": {"v": {"version": 1, "callable": "m:f", "description": "d",
                                                      "protocol": "p"}}}
    assert _parse_metric("x", good, "f.yaml: x").variants["v"].version == 1
    with pytest.raises(TriptychError, match="f.yaml: x: unknown key.*'directon' \\(did you mean 'direction'"):
        _parse_metric("x", {**good, "directon": "higher"}, "f.yaml: x")
    with pytest.raises(TriptychError, match="level 'clip'"):
        _parse_metric("x", {**good, "level": "clip"}, "f.yaml: x")
    with pytest.raises(TriptychError, match="lacks required key\\(s\\) variants"):
        _parse_metric("x", {k: v for k, v in good.items() if k != "variants"}, "f.yaml: x")


def test_list_command_prints_every_metric(run_cli):
    code, out, _ = run_cli("list", "metrics", "--json")
    assert code == 0
    import json
    names = {row["name"] for row in json.loads(out)}
    assert names == set(registry().metrics)


def test_every_packaged_benchmark_variant_and_params_hold_exactly_keys_its_loader_declares():
    """A variant key that no loader reads cannot exist: each packaged variant (and ``params``) passes its
    loader's schema, and
    the keys that were once recorded but never read (quantize, frame_resize, mask_resize) are gone."""
    from triptych.scoring import loader_schema_of

    reg = registry()
    assert not reg.broken
    for spec in reg.benchmarks.values():
        declared = loader_schema_of(spec)
        assert declared.params.check(spec.params, spec.name) == spec.params
        for name, params in spec.variants.items():
            assert declared.variant.check(params, f"{spec.name} {name}") == params
            assert not {"quantize", "frame_resize", "mask_resize"} & set(params)
            assert set(declared.invocation) <= set(declared.variant.keys)


def test_a_run_records_only_the_variant_keys_that_were_read(tmp_path):
    import triptych

    results = triptych.evaluate("sample-tennis", "mean_fill", metrics=["psnr:e2fgvi"], out=tmp_path)
    assert results.run["benchmark_params"] == {"size": [432, 240], "mask_dilation": 4}


def test_param_values_take_the_type_of_the_variant_value():
    from triptych.schema import typed_override

    assert typed_override("size", "[864, 480]", [432, 240], "w") == [864, 480]
    assert typed_override("mask_dilation", "2", 4, "w") == 2
    assert typed_override("scale_factor", "1", 0.8, "w") == 1
    assert typed_override("pad_divisor", "16", None, "w") == 16 and typed_override("refs", "/a/b", None, "w") == "/a/b"
    assert typed_override("prompts", "5", "all", "w") == "5"
    for raw, default in (("abc", 4), ("true", 4), ("2.5", 4), ("432", [432, 240]), ("[a, b]", [432, 240])):
        with pytest.raises(TriptychError, match=re.escape(f"--param k={raw!r}")):
            typed_override("k", raw, default, "w")


def test_pooling_is_declared_by_each_benchmark_not_by_its_task():
    """Per-video means come from the spec's ``pooling`` (validated: tests/test_bad_inputs_specs.py), so a
    video-completion benchmark that declares none is pooled over frames only."""
    reg = registry()
    assert reg.benchmark("sample-tennis").pooling == {"frame": "per_video"}
    assert reg.benchmark("davis").pooling == reg.benchmark("youtube-vos").pooling == {"frame": "per_video"}
    assert reg.benchmark("sample-triplets").pooling == {} and reg.benchmark("sample-portraits").pooling == {}
