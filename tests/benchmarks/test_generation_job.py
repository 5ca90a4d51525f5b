"""The protocol's generation job (benchmarks/generation_job.py) driven by the registered ``reference_copy``
generator: layout, seeds, reference folders, timing rows, resume after an interruption (file mtimes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from triptych.benchmarks.generation_job import RECORDS_DIR, SUMMARY_FILE, TABLE_FILE, run_job
from triptych.benchmarks.celeb_protocol import (
    CLI_OPTIONS,
    id_slug,
    load_protocol,
    load_references,
    make_plan,
    select_ids,
    select_prompts,
)
from triptych.errors import InputError
from triptych.methods import build_method
from triptych.registry import registry
from triptych.results import read_samples


@pytest.fixture(scope="module")
def protocol():
    return load_protocol()


def _refs(root: Path, folders: dict[str, int]) -> Path:
    """Reference folders with ``n`` distinct 24x20 photos each (pixel values i*40 + folder index)."""
    for j, (folder, n) in enumerate(folders.items()):
        (root / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((24, 20, 3), i * 40 + j, np.uint8)).save(root / folder / f"{i}.png")
    return root


class StopAfter:
    """A generator that stops the job after ``n`` images, as a kill would (then it is unusable)."""

    def __init__(self, inner, n: int) -> None:
        self.inner, self.n = inner, n

    def generate(self, reference_images, prompt, seed):
        if self.n == 0:
            raise KeyboardInterrupt
        self.n -= 1
        return self.inner.generate(reference_images, prompt, seed)


def test_slicing_and_seeds(protocol, tmp_path):
    root = _refs(tmp_path / "refs", {id_slug(i): 1 for i in protocol.ids[:3]})
    available = list(load_references(root, protocol).identities)
    assert select_ids(protocol, available, "2", "--ids") == list(protocol.ids[:2])
    assert select_ids(protocol, available, "Alan Turing, albert_einstein", "--ids") == ["Alan Turing", "Albert Einstein"]
    prompts = select_prompts(protocol, "0,3,10-11", "--prompts")
    assert [p.index for p in prompts] == [0, 3, 10, 11]
    plan, _ = make_plan({"refs": root, "ids": "Albert Einstein", "prompts": "3", "images_per_prompt": 2, "seed": 100},
                        protocol, CLI_OPTIONS)
    assert [p.index for p in plan.prompts] == [0, 1, 2]  # "3": the first three prompts
    requests = [r for r in plan.images() if r.prompt_index == 2]
    # Albert Einstein is identity 1, prompt 2, images 0 and 1: 100 + (1 * 40 + 2) * 4 + k, by hand
    assert [r.seed for r in requests] == [268, 269]
    assert plan.seeds() == {"rule": "seed = base + (i*P + p)*K + k", "base": 100, "P": 40, "K": 4,
                            "i": {"albert_einstein": 1}}
    assert requests[0].path == protocol.image_path("Albert Einstein", protocol.prompts[2], 0)
    assert "<class word>" not in requests[0].prompt and " man " in f" {requests[0].prompt} "
    with pytest.raises(InputError, match="--ids=99: the protocol has 25 identities"):
        select_ids(protocol, available, "99", "--ids")
    with pytest.raises(InputError, match="no reference folder for 1 identity: nobody"):
        select_ids(protocol, available, "Nobody", "--ids")
    for bad in ("41", "3,40", "12-10", "1,,2"):
        with pytest.raises(InputError, match=f"--prompts={bad!r}: expected"):
            select_prompts(protocol, bad, "--prompts")
    with pytest.raises(InputError, match="--images-per-prompt=5: expected 1..4"):
        make_plan({"refs": root, "ids": "1", "images_per_prompt": 5}, protocol, CLI_OPTIONS)


def test_reference_folders_both_namings(tmp_path, protocol):
    ids = protocol.ids[:2]  # Alan Turing, Albert Einstein: both "man"
    root = _refs(tmp_path / "refs", {id_slug(ids[0]): 2, f"{id_slug(ids[1])}_man": 3})
    found = load_references(root, protocol)
    assert [len(found.identities[i]) for i in ids] == [2, 3] and found.class_words == {i: "man" for i in ids}
    _refs(tmp_path / "bad", {f"{id_slug(ids[0])}_woman": 1})
    with pytest.raises(InputError, match="class word 'woman' contradicts the protocol's 'man'"):
        load_references(tmp_path / "bad", protocol)
    _refs(tmp_path / "other", {f"{id_slug(ids[0])}_man": 1})
    with pytest.raises(InputError, match="no reference folder for 1 identity: albert_einstein"):
        make_plan({"refs": tmp_path / "other", "ids": "2"}, protocol, CLI_OPTIONS)


def test_job_layout_timing_and_resume(tmp_path, protocol):
    ids = protocol.ids[:2]
    plan, _ = make_plan({"refs": _refs(tmp_path / "refs", {id_slug(i): 2 for i in ids}), "ids": "2", "prompts": "2",
                         "images_per_prompt": 2, "seed": 5}, protocol, CLI_OPTIONS)
    requests = plan.images()
    generator = build_method(registry().methods["reference_copy"])
    out = tmp_path / "out"
    ticks = iter(range(1000))
    clock = lambda: float(next(ticks)) * 0.5  # noqa: E731  each generate call lasts exactly 0.5 s

    with pytest.raises(KeyboardInterrupt):
        run_job(StopAfter(generator, 3), requests, out, method="reference_copy", method_version="1",
                protocol=protocol, seeds=plan.seeds(), progress=False, clock=clock)
    first = sorted(p for p in out.rglob("*.png"))
    assert len(first) == 3
    mtimes = {p: p.stat().st_mtime_ns for p in first}
    # a kill between a record and its image: the record stays, the image is regenerated
    last = out / requests[2].path
    last.unlink()
    result = run_job(generator, requests, out, method="reference_copy", method_version="1",
                     protocol=protocol, seeds=plan.seeds(), progress=False, clock=clock)
    assert (result.generated, result.skipped) == (6, 2)
    assert {p: p.stat().st_mtime_ns for p in first if p != last} == {p: t for p, t in mtimes.items() if p != last}
    # the only non-hidden files are the layout's images (the personalization benchmark refuses others)
    visible = [p for p in out.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.relative_to(out).parts)]
    assert sorted(p.relative_to(out).as_posix() for p in visible) == sorted(r.path for r in requests)

    # reference_copy returns reference (seed mod 2): the image written is that photo, pixel for pixel
    for r in requests:
        written = np.asarray(Image.open(out / r.path))
        expected = np.asarray(Image.open(r.given[r.seed % 2]))
        assert np.array_equal(written, expected), r.path

    table = read_samples(out / TABLE_FILE)
    assert len(table) == len(requests)
    assert set(table["metric"]) == {"personalization_time"} and set(table["level"]) == {"image"}
    assert set(table["sample_id"]) == {r.path[:-4] for r in requests}
    assert np.allclose(table["value"], 0.5)
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["images_present"] == len(requests) and summary["missing"] == []
    assert {i["path"]: i["seed"] for i in summary["images"]} == {r.path: r.seed for r in requests}
    assert summary["seeds"] == plan.seeds() and summary["seeds"]["i"] == {"alan_turing": 0, "albert_einstein": 1}
    # base 5: Albert Einstein (i = 1), prompt 1, k = 1 -> 5 + (1*40 + 1)*4 + 1, by hand
    assert {i["path"]: i["seed"] for i in summary["images"]}[protocol.image_path(ids[1], protocol.prompts[1], 1)] == 170

    again = run_job(generator, requests, out, method="reference_copy", method_version="1",
                    protocol=protocol, seeds=plan.seeds(), progress=False, clock=clock)
    assert (again.generated, again.skipped) == (0, len(requests))
    assert (out / RECORDS_DIR).is_dir() and os.path.basename(RECORDS_DIR) == "records"


def test_generate_cli_reference_copy(tmp_path, run_cli, protocol):
    ids = protocol.ids[:1]
    _refs(tmp_path / "refs", {f"{id_slug(ids[0])}_man": 2})
    out = tmp_path / "out"
    code, _, err = run_cli("generate", "--method", "reference_copy", "--refs", tmp_path / "refs", "--out", out,
                           "--ids", "1", "--prompts", "1", "--images-per-prompt", "2", "--device", "cpu", "--quiet")
    assert code == 0, err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == \
        sorted(protocol.image_path(ids[0], protocol.prompts[0], k) for k in range(2))
    code, _, err = run_cli("generate", "--method", "amt-s", "--refs", tmp_path / "refs", "--out", out)
    assert code == 2 and "reference_copy" in err
