"""Class-word tagging (pipelines/id_tag.py): the subject noun becomes the identity's class word followed by
the trigger word, on a fixed caption set covering man / woman / boy / girl / person, plurals and
possessives. The spaCy backend, where its English pipeline is not installed, says how to install it."""

from __future__ import annotations

import pytest

from triptych.errors import TriptychError
from triptych.pipelines.id_tag import spacy_pipeline, tag_caption, with_trigger

CAPTIONS = [
    # caption, identity's class word, tagged caption
    ("a man in a suit standing in front of a building", "man", "a man img in a suit standing in front of a building"),
    ("a woman with long hair smiling", "woman", "a woman img with long hair smiling"),
    ("a young boy holding a ball", "boy", "a young boy img holding a ball"),
    ("a little girl in a red dress", "girl", "a little girl img in a red dress"),
    ("a person sitting at a desk", "person", "a person img sitting at a desk"),
    ("two women talking, one wearing a hat", "woman", "two woman img talking, one wearing a hat"),
    ("three men on a stage", "man", "three man img on a stage"),
    ("a close up of a man's face", "man", "a close up of a man img's face"),
    ("the woman's portrait in black and white", "woman", "the woman img's portrait in black and white"),
    ("Boys playing football in a park", "boy", "Boy img playing football in a park"),
    ("people walking down a street", "person", "person img walking down a street"),
    ("a gentleman in a hat", "man", "a man img in a hat"),
    ("a girl and her dog on the grass", "girl", "a girl img and her dog on the grass"),
    ("a woman and a man sitting on a bench", "man", "a woman and a man img sitting on a bench"),
]


@pytest.mark.parametrize("caption, word, tagged", CAPTIONS)
def test_the_subject_noun_becomes_class_word_and_trigger(caption: str, word: str, tagged: str) -> None:
    tag = tag_caption(caption, word)
    assert tag is not None
    assert with_trigger(caption, tag, word, "img") == tagged


def test_a_caption_without_a_person_has_no_tag() -> None:
    assert tag_caption("a dog running on a beach", "man") is None


def test_spacy_backend_without_its_pipeline_says_how_to_install() -> None:
    spacy_pipeline.cache_clear()
    try:
        import spacy  # noqa: F401
        import en_core_web_sm  # noqa: F401
        pytest.skip("spaCy's English pipeline is installed here")
    except ImportError:
        pass
    with pytest.raises(TriptychError) as info:
        spacy_pipeline("en_core_web_sm")
    assert "python -m spacy download en_core_web_sm" in info.value.fix and "--backend light" in info.value.fix
