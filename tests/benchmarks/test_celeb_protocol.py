"""The packaged 25-ID x 40-prompt protocol: parsed from the file, equal to the shared copy, laid out per conventions."""

import json

import pytest

import zlib

from triptych.benchmarks.celeb_protocol import (
    CLI_OPTIONS,
    PARAM_OPTIONS,
    identity_index,
    id_slug,
    image_seed,
    load_protocol,
    parse_protocol,
    prompt_slug,
    select_prompts,
)
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


def test_image_seed_by_hand():
    protocol = load_protocol()
    # Alan Turing is identity 0, Albert Einstein 1 (file order); P = 40 prompts, K = 4 images
    assert image_seed(protocol, "Alan Turing", 0, 0, 0) == 0
    assert image_seed(protocol, "Albert Einstein", 3, 1, 100) == 100 + (1 * 40 + 3) * 4 + 1 == 273
    assert image_seed(protocol, "albert_einstein", 3, 1, 100) == 273  # by slug too
    last = protocol.ids[-1]
    assert image_seed(protocol, last, 39, 3, 0) == 25 * 40 * 4 - 1  # the full run uses 0..3999 once each
    seeds = {image_seed(protocol, i, p.index, k, 7) for i in protocol.ids for p in protocol.prompts for k in range(4)}
    assert seeds == set(range(7, 7 + 4000))
    # a custom identity: i = 25 + crc32(slug) mod 2**20, whatever other folders exist
    i = 25 + zlib.crc32(b"newton") % 2**20
    assert identity_index(protocol, "newton") == i
    assert image_seed(protocol, "newton", 2, 3, 0) == (i * 40 + 2) * 4 + 3


def test_one_prompt_grammar_for_benchmark_and_cli():
    protocol = load_protocol()
    for text, want in (("3", [0, 1, 2]), ("7,2-3", [2, 3, 7]), ("10-12,0,11", [0, 10, 11, 12]), ("all", list(range(40)))):
        bench = select_prompts(protocol, text, PARAM_OPTIONS["prompts"])
        cli = select_prompts(protocol, text, CLI_OPTIONS["prompts"])
        assert [p.index for p in bench] == [p.index for p in cli] == want
    with pytest.raises(InputError, match="--param prompts='0'"):
        select_prompts(protocol, "0", PARAM_OPTIONS["prompts"])
    with pytest.raises(InputError, match="--prompts='0'"):
        select_prompts(protocol, "0", CLI_OPTIONS["prompts"])
