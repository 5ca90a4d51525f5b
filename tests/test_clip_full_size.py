"""CLIP-T and CLIP-I at full size: ViT-B/32 and ViT-L/14 as OpenAI released them (open_clip's configs, QuickGELU),
filled by the weights rule (docs/weights_rule.md), through ``metrics/clip_score.py`` against open_clip's own
``create_model_and_transforms`` / ``get_tokenizer`` / ``encode_image`` / ``encode_text`` on the same weights.

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

pytest.importorskip("open_clip")
pytestmark = pytest.mark.slow

PORTRAITS = Path(__file__).resolve().parent.parent / "datasets/samples/portraits"
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

    reference, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, force_quick_gelu=True)
    state = rule_state_dict(reference, seed=22, gain=1.0)
    reference.load_state_dict(state, strict=True)
    reference.eval()
    vision, text, embed = WIDTHS[arch]
    assert reference.visual.conv1.out_channels == vision and reference.text_projection.shape == (text, embed)
    encoder = clip_score.build_clip(arch, "openai", {"name": f"weights-rule:{arch}", "sha256": None}, state)
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
    assert clip_score.clip_t(NEWTON[0], PROMPT, encoder=encoder) == pytest.approx(expected_t, abs=1e-6)
    assert clip_score.clip_i(NEWTON[0], [NEWTON[1], NEWTON[2], SCARLETT[0]], encoder=encoder) == pytest.approx(
        expected_i, abs=1e-6)
    # the scores move with the inputs (random weights still separate different images)
    assert abs(expected_i - 1.0) > 1e-4 and clip_score.clip_i(NEWTON[0], [NEWTON[0]], encoder=encoder) == pytest.approx(1.0)
