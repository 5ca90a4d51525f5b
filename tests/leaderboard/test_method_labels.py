"""``score --pred-dir DIR --name NAME --method-version V``: an external method gets its own label in the
results, on the leaderboard and in the gate; a name that could pass for a registered method is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import triptych
from conftest import REPO
from triptych.results import list_runs, read_run, read_samples

FRAMES = REPO / "datasets/samples/tennis/frames"
CENTRES = (1, 6, 11, 16, 21)  # sample-triplets' middle frames


def _predictions(folder: Path, offset: int) -> Path:
    """A prediction folder for sample-triplets: each middle frame replaced by the frame ``offset`` away."""
    (folder / "tennis").mkdir(parents=True)
    for c in CENTRES:
        shutil.copy(FRAMES / f"{c + offset:05d}.png", folder / "tennis" / f"{c:05d}.png")
    return folder


@pytest.fixture(scope="module")
def two_named(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("named")
    return root / "results", _predictions(root / "previous", -1), _predictions(root / "next", 1)


def test_two_named_pred_dir_methods_are_two_rows_and_pass_the_gate_against_themselves(two_named, run_cli):
    results, previous, following = two_named
    code, out, err = run_cli("score", "--benchmark", "sample-triplets", "--pred-dir", previous, "--name",
                             "prev-frame", "--method-version", "1.2", "--out", results)
    assert code == 0, err
    assert out.startswith("sample-triplets  prev-frame  psnr:amt v1")
    code, _, err = run_cli("score", "--benchmark", "sample-triplets", "--pred-dir", following, "--name",
                           "next_frame.v2", "--out", results)
    assert code == 0, err
    runs = {r["method"]: r for r in list_runs(results)}
    assert set(runs) == {"prev-frame", "next_frame.v2"}
    assert runs["prev-frame"]["method_version"] == "1.2" and runs["next_frame.v2"]["method_version"] == ""
    for label, run in runs.items():
        assert f"-sample-triplets-{label.replace('.', '-')}-" in run["run_id"]
        assert set(read_samples(results / run["run_id"])["method"]) == {label}
    # the two folders hold other frames, so their scores differ: the rows are not one method twice
    psnr = {label: next(m for m in r["metrics"] if m["metric"] == "psnr")["aggregate"]["value"]
            for label, r in runs.items()}
    assert psnr["prev-frame"] != psnr["next_frame.v2"]

    code, shown, err = run_cli("leaderboard", "show", "--results", results, "--task", "frame_interpolation",
                               "--no-ablations")
    assert code == 0, err
    reproduced = [line for line in shown.splitlines() if "reproduced" in line and "sample-triplets" in line]
    assert sum("prev-frame v1.2 " in line for line in reproduced) == 2  # psnr and ssim, with its version
    assert sum("next_frame.v2" in line for line in reproduced) == 2

    code, _, err = run_cli("gate", "--baseline", results, "--candidate", results, "--out", results.parent / "gate")
    assert code == 0, err
    gate = json.loads((results.parent / "gate/gate.json").read_text())
    assert {row["key"]["method"] for row in gate["rows"]} == {"prev-frame", "next_frame.v2"}


def test_the_same_name_again_reuses_its_run_and_a_new_version_scores_a_new_one(two_named, run_cli):
    results, previous, _ = two_named
    code, _, err = run_cli("score", "--benchmark", "sample-triplets", "--pred-dir", previous, "--name",
                           "prev-frame", "--method-version", "1.2", "--out", results)
    assert code == 0 and "reused, nothing scored" in err
    code, _, err = run_cli("score", "--benchmark", "sample-triplets", "--pred-dir", previous, "--name",
                           "prev-frame", "--method-version", "1.3", "--out", results.parent / "v13")
    assert code == 0, err
    assert read_run(Path(err.split("run: ")[-1].strip()))["method_version"] == "1.3"


def test_evaluate_records_the_name_of_a_prediction_folder(two_named, tmp_path):
    _, previous, _ = two_named
    results = triptych.evaluate("sample-triplets", pred_dir=previous, name="noisy12", method_version="7",
                                out=tmp_path, metrics=["psnr:amt"])
    assert results.run["method"] == "noisy12" and results.run["method_version"] == "7"
    assert set(results.samples["method"]) == {"noisy12"}


@pytest.mark.parametrize("args, says", [
    (["--pred-dir", "{pred}", "--name", "linear_blend"], "--name 'linear_blend' is the registered frame_interpolation"),
    (["--pred-dir", "{pred}", "--name", "my method"], "--name 'my method' is not a safe label"),
    (["--pred-dir", "{pred}", "--name", "../up"], "--name '../up' is not a safe label"),
    (["--method", "linear_blend", "--name", "blend2"], "a registered method is recorded under its registry name"),
    (["--method", "linear_blend", "--method-version", "9"], "the registry entry's version is recorded"),
])
def test_a_name_that_could_mislead_is_refused_before_any_run_folder(two_named, tmp_path, run_cli, args, says):
    _, previous, _ = two_named
    code, out, err = run_cli("score", "--benchmark", "sample-triplets", "--out", tmp_path / "results",
                             *[a.format(pred=previous) for a in args])
    assert (code, out) == (2, "")
    assert says in err and "fix:" in err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_name_repeating_the_registered_methods_own_label_is_accepted(tmp_path, run_cli):
    code, out, err = run_cli("score", "--benchmark", "sample-triplets", "--method", "linear_blend", "--name",
                             "linear_blend", "--metric", "psnr:amt", "--out", tmp_path)
    assert code == 0, err
    assert out.startswith("sample-triplets  linear_blend  psnr:amt v1  21.6846 dB")


def test_leaderboard_show_refuses_an_unknown_task_naming_the_valid_ones(run_cli):
    code, out, err = run_cli("leaderboard", "show", "--task", "nonsense")
    assert (code, out) == (2, "")
    assert "--task 'nonsense' is not a task" in err
    assert "video_inpainting, frame_interpolation, personalization" in err


def test_score_help_points_to_a_readme_section_that_exists(run_cli):
    code, out, _ = run_cli("score", "--help")
    assert code == 0
    text = " ".join(out.replace("│", " ").split())
    section = text.split("README: '")[1].split("'")[0]
    assert section == "Score a method on a benchmark"
    assert f"## {section}\n" in (REPO / "README.md").read_text(encoding="utf-8")
    assert (REPO / "docs/score_your_method.md").is_file()


def test_the_readme_python_example_gives_what_its_comments_say(tmp_path, monkeypatch):
    """README 'Bring your own method': ``results["psnr"]`` is a float, the other two are pandas frames."""
    import pandas as pd

    monkeypatch.chdir(tmp_path)
    results = triptych.evaluate("sample-triplets", "linear_blend", metrics=["psnr:amt"], out="results")
    assert isinstance(results["psnr"], float) and round(results["psnr"], 4) == 21.6846
    assert isinstance(results.aggregates(), pd.DataFrame) and isinstance(results.samples, pd.DataFrame)
    assert "# the aggregate, a float: 21.6846..." in (REPO / "README.md").read_text(encoding="utf-8")
