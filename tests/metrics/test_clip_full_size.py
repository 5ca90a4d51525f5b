"""CLIP-T and CLIP-I at full size: ViT-B/32 and ViT-L/14 as OpenAI released them, filled by the weights rule
(docs/weights_rule.md) and stored as the OpenAI files store them (float16 tensors plus ``input_resolution``,
``context_length`` and ``vocab_size``), through ``metrics/clip_score.py`` against open_clip's own reader of OpenAI
state dicts (``build_model_from_openai_state_dict``, which infers the architecture from the tensors, widened to
float32 as ``load_openai_model(precision='fp32')`` does), its transform, tokenizer and ``encode_image`` /
``encode_text``.

Slow: the weights rule fills ViT-B/32 (151M parameters) in about a minute and ViT-L/14 (428M) in about four on
two shared cores, so the default run leaves this module out (``-m slow`` runs it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from triptych.metrics import clip_score
from triptych.weights_rule import rule_state_dict

from conftest import REPO

pytest.importorskip("open_clip")
pytestmark = pytest.mark.slow

PORTRAITS = REPO / "datasets/samples/portraits"
NEWTON = sorted((PORTRAITS / "newton_man").iterdir())
SCARLETT = sorted((PORTRAITS / "scarletthead_woman").iterdir())
PROMPT = "a photo of a man wearing a hat"
WIDTHS = {"ViT-B-32": (768, 512, 512), "ViT-L-14": (1024, 768, 768)}  # vision width, text width, embedding


def _unit(vector: torch.Tensor) -> np.ndarray:
    out = vector.double().numpy()
    return out / np.linalg.norm(out)


@pytest.mark.parametrize("arch", sorted(WIDTHS))
def test_full_size_clip_scores_equal_open_clips_own_encode(arch: str) -> None:
    import open_clip

    from open_clip.model import build_model_from_openai_state_dict

    template, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, force_quick_gelu=True)
    openai_file = {k: v.half() for k, v in rule_state_dict(template, seed=22, gain=1.0).items()}
    del template
    openai_file.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77),
                       vocab_size=torch.tensor(49408))
    encoder = clip_score.build_clip(arch, "openai", {"name": f"weights-rule:{arch}", "sha256": None}, openai_file)
    reference = build_model_from_openai_state_dict(dict(openai_file), cast_dtype=None).float().eval()
    vision, text, embed = WIDTHS[arch]
    assert reference.visual.conv1.out_channels == vision and reference.text_projection.shape == (text, embed)
    tokenizer = open_clip.get_tokenizer(arch)

    with torch.no_grad():
        def image(path: Path) -> np.ndarray:
            return _unit(reference.encode_image(preprocess(Image.open(path).convert("RGB"))[None])[0])

        text_embedding = _unit(reference.encode_text(tokenizer([PROMPT]))[0])
        generated = image(NEWTON[0])
        references = [image(p) for p in (NEWTON[1], NEWTON[2], SCARLETT[0])]
    assert generated.shape == (embed,)
    expected_t = float(np.dot(generated, text_embedding))
    expected_i = float(np.mean([np.dot(generated, r) for r in references]))
    clip_t = clip_score.clip_t(NEWTON[0], PROMPT, encoder=encoder)
    clip_i = clip_score.clip_i(NEWTON[0], [NEWTON[1], NEWTON[2], SCARLETT[0]], encoder=encoder)
    print(f"{arch}: CLIP-T {clip_t:.6f} (|diff| {abs(clip_t - expected_t):.1e}), "
          f"CLIP-I {clip_i:.6f} (|diff| {abs(clip_i - expected_i):.1e})")
    assert clip_t == pytest.approx(expected_t, abs=1e-6) and clip_i == pytest.approx(expected_i, abs=1e-6)
    # the scores move with the inputs (random weights still separate different images)
    assert abs(expected_i - 1.0) > 1e-4 and clip_score.clip_i(NEWTON[0], [NEWTON[0]], encoder=encoder) == pytest.approx(1.0)
