"""Bad specs, plugins and weights (docs/bad_inputs.md, section "Specs, plugins and weights"): benchmark
variants, benchmark metric lists, metric and method entries, ``--param`` keys, gate rules and weights
entries are checked against their declared schema (``triptych/schema.py``), with the nearest valid name;
a broken plugin is named where it is used; an unpinned weights entry pins only a file that loads strictly
into its architecture, never a pickle. Each case runs the real CLI; a plugin is a real distribution on
``sys.path`` (``fake_distribution``)."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import pytest
import torch

from bad_input_cases import Case
from conftest import REPO, fake_distribution

TENNIS = {"split": "test", "task": "video_inpainting", "version": 1, "description": "d",
          "loader": "triptych.benchmarks.vos:load_video_folders", "default_variant": "e2fgvi",
          "variants": {"e2fgvi": {"size": [432, 240], "mask_dilation": 4}},
          "metrics": [{"metric": "psnr", "variant": "e2fgvi"}],
          "params": {"root": "samples", "manifest": "manifests/sample-tennis.json",
                     "videos": {"tennis": {"frames": "tennis/frames", "masks": "tennis/masks"}}}}
MARKER = "pickle-ran.txt"  # what the malicious pickles below would create if they were ever executed


def _plugin(group: str, entries: dict) -> "callable":
    """A setup that installs a plugin distribution ``spec-plugin`` declaring ``entries`` in ``group``."""
    def install(tmp: Path) -> None:
        fake_distribution(tmp / "site", "spec-plugin", f"triptych.{group}", "typo", "spec_plugin",
                          f"def entries():\n    return {entries!r}\n")
    return install


def _with_plugin(group: str, entries: dict, *args: str):
    def setup(tmp: Path) -> list:
        _plugin(group, entries)(tmp)
        return [str(a).replace("{tmp}", str(tmp)) for a in args]
    return setup


TELEA = {"task": "video_inpainting", "version": 1, "description": "d",
         "callable": "triptych.baselines.inpainting:make_telea"}


def _method(**changes):
    """A setup: a plugin method ``wide-telea`` (Telea with ``changes``) scored on the sample."""
    return _with_plugin("methods", {"wide-telea": {**TELEA, **changes}}, "score", "--benchmark", "sample-tennis",
                        "--method", "wide-telea", "--out", "{tmp}/r")


def _method_module_raises(tmp: Path) -> list:
    (tmp / "site/spec_plugin_impl.py").write_text("raise RuntimeError('no driver for this device')\n")
    return _method(callable="spec_plugin_impl:make")(tmp)


def _param(benchmark: str, method: str, setting: str):
    """A setup: ``score`` of a packaged benchmark and method with one ``--param``."""
    return lambda tmp: ["score", "--benchmark", benchmark, "--method", method, "--out", tmp / "r", "--param", setting]


def _score_tennis(name: str = "typo-tennis") -> tuple[str, ...]:
    return ("score", "--benchmark", name, "--method", "mean_fill", "--out", "{tmp}/r")


def _benchmark(**changes) -> dict:
    return {"typo-tennis": {**TENNIS, **changes}}


def _metric(name: str, kind: str, level: str, variant: str, callable_: str, **fields) -> dict:
    """A one-variant metric entry of a spec plugin; ``fields`` adds (or misspells) its direction."""
    return {name: {"description": "d", "kind": kind, "level": level, "tasks": ["video_inpainting"],
                   "gate_tolerance": 0.1, **fields,
                   "variants": {variant: {"version": 1, "callable": callable_, "description": "d", "protocol": "p"}}}}


def _rules(text: str):
    def setup(tmp: Path) -> list:
        (tmp / "rules.yaml").write_text(text)
        return ["gate", "--baseline", tmp / "base", "--candidate", tmp / "cand", "--rules", tmp / "rules.yaml"]
    return setup


class _WritesAFile:
    """Unpickling calls ``Path.touch(MARKER)``: code that a pickle carries and that must never run."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def _bare_pickle(tmp: Path) -> list:
    with open(tmp / "i3d.pt", "wb") as handle:
        pickle.dump({"conv.weight": _WritesAFile(tmp / MARKER)}, handle, protocol=2)
    return ["weights", "import", "i3d_rgb_imagenet", tmp / "i3d.pt"]


def _zip_pickle(tmp: Path) -> list:
    torch.save({"conv.weight": _WritesAFile(tmp / MARKER)}, tmp / "i3d.pt")
    return ["weights", "import", "i3d_rgb_imagenet", tmp / "i3d.pt"]


def _wrong_architecture(tmp: Path) -> list:
    torch.save({"Conv3d_1a_7x7.conv3d.weight": torch.zeros(64, 3, 7, 7, 7)}, tmp / "i3d.pt")
    return ["weights", "import", "i3d_rgb_imagenet", tmp / "i3d.pt"]


def _extra_weights_entry(tmp: Path) -> list:
    (tmp / "weights_extra.yaml").write_text(
        "tiny_net:\n  description: d\n  urls: [https://example.org/tiny.pt]\n  filename: tiny.pt\n  size: null\n"
        "  licence: MIT\n  sha256: null\n  sha256_source: null\n  format: pt\n  container_key: null\n"
        "  source: download\n  architecure: {callable: 'triptych.metrics.i3d:build_i3d'}\n")
    return ["weights", "list"]


CASES = [
    Case("variant-unknown-keys",
         _with_plugin("benchmarks", _benchmark(variants={"e2fgvi": {
             "size": [432, 240], "mask_dilation": 4, "mask_dilaton": 0, "quantize": "round",
             "frame_resize": "pil_bilinear"}}), *_score_tennis()),
         ("spec-plugin 9.9", "typo-tennis", "'mask_dilaton' (did you mean 'mask_dilation'", "'quantize'",
          "'frame_resize'")),
    Case("variant-missing-key",
         _with_plugin("benchmarks", _benchmark(variants={"e2fgvi": {"size": [432, 240]}}), *_score_tennis()),
         ("typo-tennis", "lacks required key(s) mask_dilation")),
    Case("benchmark-params-unknown-key",
         _with_plugin("benchmarks", _benchmark(params={**TENNIS["params"], "max_frame": 4}), *_score_tennis()),
         ("typo-tennis params", "'max_frame' (did you mean 'max_frames'")),
    Case("benchmark-params-missing-key",
         _with_plugin("benchmarks", _benchmark(params={"root": "samples", "videos": {}}), *_score_tennis()),
         ("typo-tennis params", "lacks required key(s) manifest")),
    Case("benchmark-video-layout-unknown-key",
         _with_plugin("benchmarks", _benchmark(params={**TENNIS["params"], "videos": {"tennis": {
             "frames": "tennis/frames", "mask": "tennis/masks"}}}), *_score_tennis()),
         ("videos 'tennis'", "'mask' (did you mean 'masks'")),
    Case("benchmark-metric-unknown-key",
         _with_plugin("benchmarks", _benchmark(metrics=[{"metric": "psnr", "varient": "e2fgvi"}]), *_score_tennis()),
         ("spec-plugin 9.9", "'varient' (did you mean 'variant'")),
    Case("benchmark-unknown-metric",
         _with_plugin("benchmarks", _benchmark(metrics=[{"metric": "pnsr", "variant": "e2fgvi"}]), *_score_tennis()),
         ("spec-plugin 9.9", "unknown metric 'pnsr' (did you mean 'psnr'")),
    Case("benchmark-unknown-metric-variant",
         _with_plugin("benchmarks", _benchmark(metrics=[{"metric": "ssim", "variant": "win56"}]), *_score_tennis()),
         ("'win56' (did you mean 'win65'",)),
    Case("benchmark-entry-unknown-key",
         _with_plugin("benchmarks", {"typo-tennis": {**TENNIS, "default_varaint": "e2fgvi"}}, *_score_tennis()),
         ("'default_varaint' (did you mean 'default_variant'",)),
    Case("benchmark-pooling-unknown",
         _with_plugin("benchmarks", _benchmark(pooling={"frame": "per_vidoe"}), *_score_tennis()),
         ("unknown pooling of frame metrics 'per_vidoe' (did you mean 'per_video'", "use one of per_video")),
    Case("benchmark-pooling-unknown-level",
         _with_plugin("benchmarks", _benchmark(pooling={"frames": "per_video"}), *_score_tennis()),
         ("unknown metric level in pooling 'frames' (did you mean 'frame'",)),
    Case("metric-entry-unknown-key",
         _with_plugin("metrics", _metric("psnr2", "fidelity", "frame", "a", "triptych.metrics.psnr:psnr_amt",
                                         directon="higher"),
                      "measure", "psnr2", "--variant", "a", "--pred", REPO / "datasets/samples/tennis/frames/00000.png",
                      "--gt", REPO / "datasets/samples/tennis/frames/00000.png"),
         ("spec-plugin 9.9", "psnr2", "'directon' (did you mean 'direction'")),
    Case("metric-requires-undeclared-input",
         _with_plugin("metrics", _metric("ewarp2", "video_flow", "video", "files",
                                         "triptych.metrics.ewarp:ewarp_files", direction="lower"),
                      "measure", "ewarp2", "--pred", REPO / "datasets/samples/tennis/frames",
                      "--gt", REPO / "datasets/samples/tennis/frames"),
         ("spec-plugin 9.9", "ewarp2 variant 'files'", "triptych.metrics.ewarp:ewarp_files requires 'flow_dir'",
          "declare it under inputs")),
    Case("method-params-unknown-key",
         _method(params={"raduis": 5}),
         ("wide-telea", "'raduis' (did you mean 'radius'")),
    Case("method-entry-unknown-key",
         _method(parms={"radius": 5}),
         ("spec-plugin 9.9", "'parms' (did you mean 'params'")),
    Case("method-inputs-unknown",
         _method(inputs={"wieghts": "optional"}),
         ("spec-plugin 9.9", "wide-telea", "unknown input 'wieghts' (did you mean 'weights'")),
    Case("method-inputs-not-taken",
         _method(inputs={"weights": "optional"}),
         ("wide-telea", "inputs declares 'weights'", "triptych.baselines.inpainting:make_telea does not take")),
    Case("method-params-not-a-mapping",
         _method(params=[5]),
         ("spec-plugin 9.9", "params must be a mapping")),
    Case("method-unknown-task",
         _method(task="video_inpaiting"),
         ("spec-plugin 9.9", "unknown task 'video_inpaiting' (did you mean 'video_inpainting'")),
    Case("method-version-not-an-integer",
         _method(version="one"),
         ("spec-plugin 9.9", "version must be an integer, not 'one'")),
    Case("method-callable-not-importable",
         _method(callable="triptych.baselines.inpaintin:make_telea"),
         ("'triptych.baselines.inpaintin:make_telea'", "cannot import triptych.baselines.inpaintin")),
    Case("method-module-raises-on-import", _method_module_raises,
         ("'spec_plugin_impl:make'", "RuntimeError: no driver for this device")),
    Case("plugin-returns-a-list",
         _with_plugin("metrics", ["psnr3"], "measure", "psnr3", "--variant", "a", "--pred", REPO / "README.md",
                      "--gt", REPO / "README.md"),
         ("unknown metric 'psnr3'", "spec-plugin 9.9", "expected a mapping of name -> entry, not list")),
    Case("plugin-fails-to-load",
         lambda tmp: (fake_distribution(tmp / "site", "spec-plugin", "triptych.methods", "typo", "spec_plugin",
                                        "def entries():\n    raise RuntimeError('boom')\n"),
                      ["score", "--benchmark", "sample-tennis", "--method", "blur-filll", "--out", tmp / "r"])[1],
         ("unknown method 'blur-filll'", "spec-plugin 9.9", "failed to load (boom)")),
    Case("plugin-name-clash",
         _with_plugin("methods", {"mean_fill": {"task": "video_inpainting", "version": 1, "description": "d",
                                                "callable": "triptych.baselines.inpainting:make_mean_fill"}},
                      "score", "--benchmark", "sample-tennis", "--method", "mean_fill", "--out", "{tmp}/r"),
         ("spec-plugin 9.9", "already declared in triptych.baselines/specs/inpainting.yaml")),
    Case("param-unknown-key", _param("sample-tennis", "mean_fill", "mask_dilaton=0"),
         ("--param", "'mask_dilaton' (did you mean 'mask_dilation'")),
    Case("param-not-an-integer", _param("sample-tennis", "mean_fill", "mask_dilation=abc"),
         ("sample-tennis", "--param mask_dilation='abc' is not an integer", "--param mask_dilation=4")),
    Case("param-list-of-another-length", _param("sample-tennis", "mean_fill", "size=432"),
         ("--param size='432' is not a list of 2 values", "--param size=[432, 240]")),
    Case("param-invocation-not-taken", _param("sample-triplets", "linear_blend", "scale_factor=0.5"),
         ("--param 'scale_factor'", "linear_blend", "not taken by the factory")),
    Case("gate-rule-unknown-metric", _rules("pnsr: {absolute: 0.05}\n"),
         ("rules.yaml", "unknown metric 'pnsr' (did you mean 'psnr'")),
    Case("gate-rule-unknown-variant", _rules("ssim:win56: {relative: 0.001}\n"),
         ("rules.yaml", "'win56' (did you mean 'win65'")),
    Case("gate-rule-unknown-key", _rules("psnr: {absolut: 0.05}\n"),
         ("rules.yaml", "'absolut' (did you mean 'absolute'")),
    Case("gate-rule-not-a-number", _rules("psnr: {absolute: lots}\n"),
         ("rules.yaml", "tolerances must be numbers")),
    Case("gate-rule-not-a-mapping", _rules("psnr: 0.05\n"),
         ("rules.yaml", "a gate rule must be a mapping of absolute, relative")),
    Case("weights-bare-pickle", _bare_pickle,
         ("i3d_rgb_imagenet", "i3d.pt", "bare pickle", "never trusted on first use")),
    Case("weights-pickle-with-code-in-zip", _zip_pickle,
         ("i3d_rgb_imagenet", "i3d.pt", "not pinned", "weights_only=True")),
    Case("weights-wrong-architecture", _wrong_architecture,
         ("i3d_rgb_imagenet", "i3d.pt", "does not load strictly into triptych.metrics.i3d:build_i3d",
          "missing key(s)")),
    Case("weights-unpin-registry-pin", lambda tmp: ["weights", "unpin", "raft_large_c_t_skht_v2"],
         ("raft_large_c_t_skht_v2", "pinned by the registry")),
    Case("weights-unpin-without-pin", lambda tmp: ["weights", "unpin", "amt_s"],
         ("amt_s", "no trust-on-first-use pin")),
    Case("weights-unpin-unknown-name", lambda tmp: ["weights", "unpin", "amt_ss"],
         ("unknown weights 'amt_ss'", "amt_s")),
    Case("weights-entry-unknown-key", _extra_weights_entry,
         ("weights_extra.yaml", "'architecure' (did you mean 'architecture'")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_spec_gets_a_clear_error(case, plugin_site, tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    args = case.setup(tmp_path)
    importlib.invalidate_caches()
    if (tmp_path / "weights_extra.yaml").exists():
        monkeypatch.setenv("TRIPTYCH_WEIGHTS_EXTRA", str(tmp_path / "weights_extra.yaml"))
    case.assert_refused(*run_cli(*args))
    assert not (tmp_path / MARKER).exists(), "a pickle's code ran"
    assert not (tmp_path / "home/weights/pins.json").exists(), "a refused file was pinned"
