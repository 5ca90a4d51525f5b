"""The registry is data: YAML entries -> typed specs, clear errors for unknown names and bad entries."""

from __future__ import annotations

import re

import pytest

from triptych.errors import TriptychError, UnknownNameError
from triptych.registry import _parse_method, _parse_metric, registry


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


def _variant(callable_: str, **extra):
    entry = {"description": "d", "kind": "video_flow", "level": "video", "direction": "lower", "tasks": [],
             "gate_tolerance": 0.1, "variants": {"v": {"version": 1, "callable": callable_, "description": "d",
                                                       "protocol": "p", **extra}}}
    return _parse_metric("x", entry, "f.yaml: x").variants["v"]


def test_declared_inputs_are_checked_against_the_callable_when_it_is_loaded():
    """inputs: an unknown input kind is refused where the entry is read (file, entry, key); a callable that
    does not take a declared input, or requires one the entry does not declare, is refused when it is
    loaded, naming the entry and the function."""
    files = "triptych.metrics.ewarp:ewarp_files"
    assert _variant(files, inputs={"flow_dir": "required"}).load().__name__ == "ewarp_files"
    with pytest.raises(TriptychError, match=r"f\.yaml: x variant 'v': inputs: unknown input 'flowdir' "
                                            r"\(did you mean 'flow_dir'"):
        _variant(files, inputs={"flowdir": "required"})
    with pytest.raises(TriptychError, match=r"inputs must be a mapping of input name -> required or optional"):
        _variant(files, inputs=["flow_dir"])
    with pytest.raises(TriptychError, match=r"f\.yaml: x variant 'v': triptych\.metrics\.ewarp:ewarp_files "
                                            r"requires 'flow_dir', which the entry neither declares"):
        _variant(files).load()
    with pytest.raises(TriptychError, match=r"inputs declares 'flow_dir' optional, but .*ewarp_files requires it"):
        _variant(files, inputs={"flow_dir": "optional"}).load()
    with pytest.raises(TriptychError, match=r"f\.yaml: x variant 'v': inputs declares 'state', which "
                                            r"triptych\.metrics\.ewarp:ewarp_dis does not take"):
        _variant("triptych.metrics.ewarp:ewarp_dis", inputs={"state": "optional"}).load()
    with pytest.raises(TriptychError, match=r"must take the data pred_frames, gt_frames first"):
        _variant("triptych.metrics.psnr:psnr_amt").load()
    method = {"task": "video_inpainting", "version": 1, "description": "d",
              "callable": "triptych.baselines.inpainting:make_mean_fill"}
    assert _parse_method("m", method, "m.yaml: m").inputs.names == ()  # no inputs: the entry takes none
    with pytest.raises(TriptychError, match=r"m\.yaml: m: inputs declares 'weights', which "
                                            r"triptych\.baselines\.inpainting:make_mean_fill does not take"):
        _parse_method("m", {**method, "inputs": {"weights": "optional"}}, "m.yaml: m").load()
    with pytest.raises(TriptychError, match=r"m\.yaml: m: inputs: unknown input 'masks'"):
        _parse_method("m", {**method, "inputs": {"masks": "required"}}, "m.yaml: m")


def test_every_packaged_entry_declares_the_inputs_its_callable_takes():
    """Every packaged callable loads against its declaration, and the inputs the measure kinds and the
    benchmarks feed are declared where the callable reads them."""
    reg = registry()
    for spec in reg.metrics.values():
        for variant in spec.variants.values():
            variant.load()
    for method in reg.methods.values():
        method.load()
    assert reg.metric("ewarp").variant("files").inputs.mode("flow_dir") == "required"
    assert reg.metric("pcons_psnr").variant("devil").inputs.mode("masks") == "optional"
    assert reg.metric("pcons_psnr").variant("devil").inputs.takes("state")
    assert reg.metric("psnr").variant("amt").inputs.names == ()
    assert reg.method("other_id").inputs.takes("context") and reg.method("amt-s").inputs.takes("device")


def test_every_packaged_declaration_is_complete():
    """A packaged callable that can take an input (a parameter of that name, not set by its params) declares
    it: an undeclared one is never passed, so a method would silently lose ``--device`` or ``--weights``."""
    import inspect

    from triptych.inputs import METHOD_INPUTS, METRIC_INPUTS

    reg = registry()
    entries = [(f"{s.name}:{v.name}", v.load(), v.inputs, v.params, METRIC_INPUTS)
               for s in reg.metrics.values() if s.plugin is None for v in s.variants.values()]
    entries += [(m.name, m.load(), m.inputs, m.params, METHOD_INPUTS) for m in reg.methods.values() if m.plugin is None]
    undeclared = [f"{name}: {p}" for name, fn, inputs, params, known in entries
                  for p in inspect.signature(fn).parameters if p in known and p not in params and not inputs.takes(p)]
    assert undeclared == [], "declare these under inputs"


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
