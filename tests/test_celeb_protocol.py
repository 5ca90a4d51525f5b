"""The packaged 25-ID x 40-prompt protocol: parsed from the file, equal to the shared copy, laid out per conventions."""

import json

import pytest

from triptych.benchmarks.celeb_protocol import id_slug, load_protocol, parse_protocol, prompt_slug
from triptych.errors import InputError


def test_packaged_protocol_is_the_shared_file(fixtures_dir):
    shared = json.loads((fixtures_dir.parent / "protocols/personalization_celeb.json").read_text())
    packaged = load_protocol()
    assert packaged == load_protocol(fixtures_dir.parent / "protocols/personalization_celeb.json")
    assert packaged.name == shared["name"]
    assert len(packaged.prompts) == sum(len(v) for v in shared["prompts"].values())
    assert [p.template for p in packaged.prompts] == [t for v in shared["prompts"].values() for t in v]


def test_layout_and_counts():
    protocol = load_protocol()
    assert (len(protocol.ids), len(protocol.prompts), protocol.images_per_prompt) == (25, 40, 4)
    paths = protocol.expected_images()
    assert len(paths) == len(set(paths)) == 25 * 40 * 4
    first = protocol.prompts[1]
    assert protocol.image_path("Alan Turing", first, 3) == "alan_turing/01_a_class_word_wearing_a_superman_outfit/3.png"
    assert protocol.fill(first, protocol.class_words["Alan Turing"]) == "a man wearing a Superman outfit"
    with pytest.raises(ValueError):
        protocol.image_path("Alan Turing", first, 4)


def test_slugs():
    assert id_slug("Fei-Fei Li") == "fei_fei_li"
    assert prompt_slug("a <class word> with white hair, wearing glasses") == "a_class_word_with_white_hair_wearing_glasses"


def test_malformed_protocol_is_named(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"name": "x", "ids": ["A"], "class_words": {}, "prompts": {"g": ["a <class word>"]},
                               "images_per_id_per_prompt": 1, "class_word_placeholder": "<class word>"}))
    with pytest.raises(InputError, match="no class word for A"):
        load_protocol(bad)
    with pytest.raises(InputError, match="not a personalization protocol"):
        parse_protocol({"name": "x"}, "inline")
