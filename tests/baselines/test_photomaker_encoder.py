"""The PhotoMaker ID encoder port (v1, v2) against the golden fixture of the authors' code.

Every seed, gain, hash, index and tolerance is read from ``shared/fixtures/model_ports/photomaker``
(``expected.json``, its README's suggested tolerances restated as ``TOLERANCE_KEYS`` below). Each model
is built, filled by the weights rule and run once (module-scoped; the rule draws 326M / 543M numbers,
so each model costs some 30-60 s on 2 cores), then dropped before the next.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from triptych.baselines.photomaker_encoder import (  # noqa: E402
    POSITION_IDS_KEY,
    FuseModule,
    build_id_encoder,
    class_tokens,
    class_tokens_for_version,
    id_pixel_values,
    load_id_encoder,
    load_id_encoder_state,
    tokenize_for_version,
)
from triptych.errors import TriptychError  # noqa: E402
from triptych.media import read_rgb  # noqa: E402
from triptych.weights import MissingWeightsError  # noqa: E402
from triptych.weights_rule import apply_weights_rule  # noqa: E402

# The README's "Suggested tolerance" (atol, rtol 0): out_* and the three small intermediates 1e-4, the
# CLIP last hidden state (absmax ~21) 1e-3. Its wording is prose, so the mapping lives here.
OUT_ATOL = 1e-4
LAST_HIDDEN_ATOL = 1e-3


@pytest.fixture(scope="module")
def pm_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "model_ports/photomaker"


@pytest.fixture(scope="module")
def pm_expected(pm_dir: Path) -> dict:
    return json.loads((pm_dir / "expected.json").read_text())


def _load(folder: Path, name: str, spec: dict | None = None) -> torch.Tensor:
    """A stored array; with ``spec``, first check the sha256 of its C-order bytes against the fixture."""
    array = np.load(folder / name)
    if spec is not None:
        assert hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() == spec["sha256"], name
    return torch.from_numpy(array)


def _run(version: str, pm_dir: Path, pm_expected: dict) -> dict:
    """Build, apply the rule, run the fixture's call once; returns the hash and every output as numpy."""
    model_spec = pm_expected["models"][version]
    inputs = model_spec["inputs"]
    model = build_id_encoder(version, init_weights=False)
    rule = pm_expected["weights_rule"]
    digest = apply_weights_rule(model, rule["seeds"][version], rule["gain"])
    pixels = _load(pm_dir, pm_expected["inputs"]["id_pixel_values"]["file"], pm_expected["inputs"]["id_pixel_values"])
    prompt = _load(pm_dir, inputs["prompt_embeds"]["file"], inputs["prompt_embeds"])
    mask = _load(pm_dir, inputs["class_tokens_mask"]["file"])
    args = [pixels, prompt.clone(), mask]
    if version == "v2":
        args.append(_load(pm_dir, inputs["id_embeds"]["file"], inputs["id_embeds"]))
    with torch.no_grad():
        result = model.run(*args)
    assert torch.equal(args[1], prompt), "the encoder wrote into its input"
    del model
    return {"digest": digest, "prompt": prompt.numpy(), "mask": mask.numpy(),
            "out": result.prompt_embeds.numpy(), "id_embeds": result.id_embeds.numpy(),
            "pooler_output": result.pooler_output.numpy(), "last_hidden_state": result.last_hidden_state.numpy()}


@pytest.fixture(scope="module")
def v1_result(pm_dir, pm_expected) -> dict:
    return _run("v1", pm_dir, pm_expected)


@pytest.fixture(scope="module")
def v2_result(pm_dir, pm_expected, v1_result) -> dict:  # after v1, so the two never share memory
    return _run("v2", pm_dir, pm_expected)


def _max_abs(ours: np.ndarray, reference: np.ndarray) -> float:
    assert ours.shape == reference.shape
    return float(np.abs(ours.astype(np.float64) - reference.astype(np.float64)).max())


@pytest.mark.parametrize("version", ("v1", "v2"))
def test_state_dict_keys_order_and_shapes_equal_the_reference(pm_dir, version):
    listing = json.loads((pm_dir / f"photomaker_{version}_keys.json").read_text())
    model = build_id_encoder(version, init_weights=False)
    ours = [(k, list(t.shape), str(t.dtype).removeprefix("torch.")) for k, t in model.state_dict().items()]
    assert ours == [(e["key"], e["shape"], e["dtype"]) for e in listing["keys"]]
    assert sum(p.numel() for p in model.parameters()) == listing["total_parameters"] == model.config.parameters
    assert len(ours) == listing["num_state_dict_entries"] == model.config.state_dict_entries


def test_v1_matches_reference(v1_result, pm_dir, pm_expected):
    spec = pm_expected["models"]["v1"]
    assert v1_result["digest"] == spec["state_sha256"]
    out = np.load(pm_dir / spec["output"]["file"])
    assert _max_abs(v1_result["out"], out) <= OUT_ATOL
    outside = ~v1_result["mask"][0]
    assert np.array_equal(v1_result["out"][0, outside], v1_result["prompt"][0, outside])  # bit for bit
    assert _max_abs(v1_result["pooler_output"], np.load(pm_dir / "v1_pooler_output.npy")) <= OUT_ATOL
    assert _max_abs(v1_result["id_embeds"], np.load(pm_dir / "v1_id_embeds.npy")) <= OUT_ATOL


def test_v2_matches_reference(v2_result, pm_dir, pm_expected):
    spec = pm_expected["models"]["v2"]
    assert v2_result["digest"] == spec["state_sha256"]
    out = np.load(pm_dir / spec["output"]["file"])
    assert _max_abs(v2_result["out"], out) <= OUT_ATOL
    outside = ~v2_result["mask"][0]
    assert np.array_equal(v2_result["out"][0, outside], v2_result["prompt"][0, outside])
    hidden = np.load(pm_dir / "v2_vision_last_hidden_state.npy")
    assert _max_abs(v2_result["last_hidden_state"], hidden) <= LAST_HIDDEN_ATOL
    qformer = np.load(pm_dir / "v2_qformer_out.npy")
    assert _max_abs(v2_result["id_embeds"].reshape(qformer.shape), qformer) <= OUT_ATOL


def test_id_pixel_values_equal_the_pipeline_preprocessing(fixtures_dir, pm_dir, pm_expected):
    portraits = fixtures_dir.parent / "data/portraits"
    images = [torch.from_numpy(read_rgb(portraits / name)).permute(2, 0, 1) / 255.0
              for name in pm_expected["inputs"]["images"]]
    expected = np.load(pm_dir / pm_expected["inputs"]["id_pixel_values"]["file"])
    assert _max_abs(id_pixel_values(images).numpy(), expected) <= OUT_ATOL


# --- class-token mask -----------------------------------------------------------------------------------------

def _fixture_ids(pm_expected: dict, version: str) -> tuple[list[int], list[int], int, int]:
    """(ids with the trigger, as the version's tokenizer call gives them; clean-id head; trigger; pad)."""
    inputs = pm_expected["models"][version]["inputs"]
    listed, clean = inputs["token_ids_with_trigger_tokenizer1"], inputs["clean_input_ids_tokenizer1"]
    (trigger,) = set(listed) - set(clean)
    pad = listed[-1]  # the listing is cut after a few pad ids (CLIP-L pads with its EOS)
    if version == "v1":  # tokenizer.encode: BOS ... EOS, no padding
        ids = listed[:listed.index(pad) + 1]
    else:  # padded to 77 with truncation
        ids = listed + [pad] * (77 - len(listed))
    return ids, clean, trigger, pad


@pytest.mark.parametrize("version", ("v1", "v2"))
def test_class_tokens_mask_and_ids_equal_the_pipeline(pm_dir, pm_expected, version):
    ids, clean, trigger, pad = _fixture_ids(pm_expected, version)
    spec = pm_expected["models"][version]["inputs"]["class_tokens_mask"]
    got = class_tokens_for_version(ids, version, trigger, pm_expected["inputs"]["num_id_images"], pad)
    expected = np.load(pm_dir / spec["file"])
    assert got.class_tokens_mask.dtype == torch.bool and np.array_equal(got.class_tokens_mask.numpy(), expected)
    assert got.class_token_index == spec["class_token_index"]
    assert np.flatnonzero(expected[0]).tolist() == spec["true_indices"]
    assert got.input_ids.shape == (1, 77) and got.input_ids[0, :len(clean)].tolist() == clean
    assert set(got.input_ids[0, len(clean):].tolist()) == {pad}


def test_tokenize_for_version_makes_the_calls_of_each_pipeline():
    class Tokenizer:  # records how it was called
        model_max_length = 77

        def encode(self, prompt):
            return [1, 2, 3]

        def __call__(self, prompt, **kwargs):
            self.kwargs = kwargs
            return {"input_ids": [1, 2, 3] + [0] * 74}

    tokenizer = Tokenizer()
    assert tokenize_for_version(tokenizer, "p", "v1") == [1, 2, 3]
    assert len(tokenize_for_version(tokenizer, "p", "v2")) == 77
    assert tokenizer.kwargs == {"padding": "max_length", "max_length": 77, "truncation": True}


def test_trigger_word_errors():
    with pytest.raises(TriptychError, match="0 times") as info:
        class_tokens([1, 5, 6, 2], trigger_id=9, num_id_images=2, tokens_per_image=1, pad_id=2)
    assert "a photo of a man img" in info.value.fix
    with pytest.raises(TriptychError, match="2 times"):
        class_tokens([1, 5, 9, 6, 9, 2], trigger_id=9, num_id_images=2, tokens_per_image=1, pad_id=2)
    with pytest.raises(TriptychError, match="no class word before it"):
        class_tokens([1, 9, 5, 2], trigger_id=9, num_id_images=2, tokens_per_image=1, pad_id=2)
    # Repeats past max_length are cut, the mask with them (as the pipeline does).
    cut = class_tokens([1, 5, 6, 9, 2], trigger_id=9, num_id_images=4, tokens_per_image=2, pad_id=0, max_length=6)
    assert cut.input_ids.tolist() == [[1, 5, 6, 6, 6, 6]] and cut.class_tokens_mask.sum() == 4


def test_fuse_refuses_a_mask_that_does_not_fit_the_id_embeddings():
    fuse = FuseModule(embed_dim=8).eval()
    prompt, ids = torch.zeros(1, 6, 8), torch.zeros(1, 2, 1, 8)
    mask = torch.tensor([[False, True, True, True, True, False]])  # the HEAD pipeline's v1 mask (2 x 2)
    with pytest.raises(TriptychError, match=r"marks 4 prompt position\(s\).*2 ID embedding") as info:
        fuse(prompt, ids, mask)
    assert "tokens_per_image=1" in info.value.fix


# --- strict loading -----------------------------------------------------------------------------------------

def test_strict_loading_names_missing_extra_and_misshaped_keys():
    model = build_id_encoder("v1", init_weights=False)
    state = model.state_dict()
    missing = {k: v for k, v in state.items() if k != "fuse_module.layer_norm.bias"}
    with pytest.raises(TriptychError, match=r"1 missing key\(s\): fuse_module\.layer_norm\.bias") as info:
        load_id_encoder_state(model, missing, "photomaker-v1.bin")
    assert "photomaker-v1.bin" in str(info.value) and info.value.fix
    with pytest.raises(TriptychError, match=r"1 unexpected key\(s\): extra\.weight"):
        load_id_encoder_state(model, {**state, "extra.weight": torch.zeros(1)})
    with pytest.raises(TriptychError, match=r"shape mismatch.*visual_projection_2\.weight \(1280, 768\)"):
        load_id_encoder_state(model, {**state, "visual_projection_2.weight": torch.zeros(1280, 768)})
    with pytest.raises(TriptychError, match="use version 'v2'"):
        load_id_encoder_state(model, {**state, "qformer_perceiver.token_norm.weight": torch.zeros(2048)})
    # A stray position_ids (saved by transformers versions where it was a persistent buffer) is ignored.
    load_id_encoder_state(model, {**state, POSITION_IDS_KEY: torch.arange(257).unsqueeze(0)})
    assert torch.equal(model.vision_model.embeddings.position_ids, torch.arange(257).unsqueeze(0))
    v2 = build_id_encoder("v2", init_weights=False)
    v1_only = {k: v for k, v in v2.state_dict().items() if not k.startswith("qformer_perceiver.")}
    with pytest.raises(TriptychError, match="use version 'v1'"):
        load_id_encoder_state(v2, v1_only)


def test_load_id_encoder_errors_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIPTYCH_OFFLINE", "1")
    with pytest.raises(MissingWeightsError, match="photomaker_v2") as info:
        load_id_encoder("v2")
    assert "triptych weights import photomaker_v2" in str(info.value)
    adapter = tmp_path / "adapter.bin"
    torch.save({"id_encoder": {"foo.weight": torch.zeros(2)}, "lora_weights": {}}, adapter)
    with pytest.raises(TriptychError, match=r"adapter\.bin does not fit.*407 missing.*unexpected key\(s\): foo\."):
        load_id_encoder("v1", adapter)
    with pytest.raises(TriptychError, match="unknown PhotoMaker version 'v3'"):
        load_id_encoder("v3")  # type: ignore[arg-type]
