"""Video completion baselines ``telea`` and ``propagation`` and the ``triptych inpaint`` command."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from triptych.baselines.inpainting import Propagation, Telea, frames_to_uint8, uint8_to_frames
from triptych.benchmarks.vos import process_frame, process_mask
from triptych.cli import main
from triptych.media import read_mask, read_rgb
from triptych.results import read_samples
from triptych.scoring import score

SAMPLE_TENNIS = REPO / "datasets/samples/tennis"


def _harness_uint8(pred: torch.Tensor) -> np.ndarray:
    """What benchmarks/vos.py VideoCompletion.predict does to a method's output."""
    return np.clip(pred.permute(0, 2, 3, 1).numpy() * 255.0, 0, 255).astype(np.uint8)


def _sample_video(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    frames = np.stack([process_frame(SAMPLE_TENNIS / f"frames/{i:05d}.png", (432, 240)) for i in range(n)])
    masks = np.stack([process_mask(SAMPLE_TENNIS / f"masks/{i:05d}.png", (432, 240), 4) for i in range(n)])
    return frames, masks


def _tensors(frames: np.ndarray, masks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0,
            torch.from_numpy(masks)[:, None].float())


@pytest.fixture(scope="module")
def sample_scores(tmp_path_factory):
    out = tmp_path_factory.mktemp("scores")
    return {m: read_samples(score("sample-tennis", out / m, method=m)).sort_values("sample_id")
            for m in ("mean_fill", "telea", "propagation")}


def test_every_uint8_value_survives_the_harness_truncation():
    values = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    assert np.array_equal(_harness_uint8(uint8_to_frames(values)), values)
    # the float frames the harness passes in (uint8 / 255) come back by rounding, exactly
    assert np.array_equal(frames_to_uint8(torch.from_numpy(values).permute(0, 3, 1, 2).float() / 255.0), values)
    # a margin of half a level: float error of a few ulps either way cannot change the level, whereas
    # u / 255 sits on the truncation edge and one ulp below it truncates to u - 1
    encoded = uint8_to_frames(values)
    for nudged in (torch.nextafter(encoded, encoded - 1), torch.nextafter(encoded, encoded + 1), encoded * (1 + 1e-6)):
        assert np.array_equal(_harness_uint8(nudged), values)
    naive = torch.from_numpy(values).permute(0, 3, 1, 2).float() / 255.0
    assert (_harness_uint8(torch.nextafter(naive, naive - 1)) == values - 1)[values > 0].all()


def test_telea_on_the_fixture_frames_reproduces_the_fixture_prediction(fixtures_dir):
    folder = fixtures_dir / "inpainting/tennis"
    gt = np.stack([read_rgb(folder / f"gt/{i:05d}.png") for i in range(24)])
    masks = np.stack([read_mask(folder / f"masks/{i:05d}.png").astype(np.uint8) for i in range(24)])
    pred = _harness_uint8(Telea().inpaint(*_tensors(gt, masks)))
    composite = pred * masks[..., None] + gt * (1 - masks[..., None])
    for i in range(24):
        expected = read_rgb(folder / f"pred/{i:05d}.png")
        diff = np.abs(composite[i].astype(int) - expected).max()
        assert diff == 0, f"frame {i:05d}: max pixel difference {diff} from the fixture's Telea prediction"


def test_telea_scores_the_fixture_per_frame_values(sample_scores, inpainting_expected):
    rows = sample_scores["telea"]
    tol = inpainting_expected["tolerances"]
    for metric, key in (("psnr", "psnr_db_abs"), ("ssim", "ssim_abs")):
        got = rows[rows.metric == metric].value.tolist()
        assert got == pytest.approx(inpainting_expected[metric]["per_frame"], abs=tol[key])


def test_propagation_beats_mean_fill_on_the_sample(sample_scores):
    psnr = {m: rows[rows.metric == "psnr"].value.mean() for m, rows in sample_scores.items()}
    assert psnr["propagation"] > psnr["mean_fill"]
    assert len(sample_scores["propagation"]) == 48


def test_propagation_is_deterministic_keeps_visible_pixels_and_never_reads_the_hole():
    frames, masks = _sample_video(6)
    x, m = _tensors(frames, masks)
    first = _harness_uint8(Propagation().inpaint(x, m))
    assert np.array_equal(first, _harness_uint8(Propagation().inpaint(x, m)))
    visible = masks == 0
    assert np.array_equal(first[visible], frames[visible])
    blanked = frames.copy()
    blanked[masks > 0] = 0
    assert np.array_equal(first, _harness_uint8(Propagation().inpaint(*_tensors(blanked, masks))))


def test_propagation_recovers_a_static_background_a_moving_hole_uncovers():
    rng = np.random.default_rng(0)
    background = np.kron(rng.integers(0, 256, (12, 16, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 96x128
    frames = np.stack([background] * 5)
    masks = np.zeros((5, 96, 128), dtype=np.uint8)
    for t in range(5):
        masks[t, 30:60, 10 + 20 * t:40 + 20 * t] = 1  # a 30x30 hole sliding right by 20 px a frame
    x, m = _tensors(frames, masks)
    hole = masks > 0
    errors = {name: np.abs(_harness_uint8(method.inpaint(x, m)).astype(int) - frames)[hole].mean()
              for name, method in (("propagation", Propagation()), ("telea", Telea()))}
    assert errors["propagation"] < 1.0 and errors["telea"] > 20, errors  # measured: 0.39 and 52.3


def _tennis_folders(tmp_path, n: int = 4):
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for i in range(n):
        shutil.copy(SAMPLE_TENNIS / f"frames/{i:05d}.png", frames)
        shutil.copy(SAMPLE_TENNIS / f"masks/{i:05d}.png", masks)
    return frames, masks


def test_inpaint_command_writes_what_score_composites(tmp_path, capsys, fixtures_dir):
    frames, masks = _tennis_folders(tmp_path)
    out = tmp_path / "out"
    code = main(["inpaint", "--method", "telea", "--frames", str(frames), "--masks", str(masks),
                 "--out", str(out), "--dilation", "4"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(4)]
    for i in range(4):  # E2FGVI dilation x4 + Telea + composite = the fixture's prediction
        expected = read_rgb(fixtures_dir / f"inpainting/tennis/pred/{i:05d}.png")
        assert np.array_equal(read_rgb(out / f"{i:05d}.png"), expected)
    # default dilation 0: the hole is the mask as given, and everything outside it is the input frame
    code = main(["inpaint", "--method", "mean_fill", "--frames", str(frames), "--masks", str(masks),
                 "--out", str(tmp_path / "raw")])
    assert code == 0
    written = read_rgb(tmp_path / "raw/00000.png")
    raw_hole = read_mask(masks / "00000.png")
    original = read_rgb(frames / "00000.png")
    assert np.array_equal(written[~raw_hole], original[~raw_hole])
    assert not np.array_equal(written[raw_hole], original[raw_hole])


def test_inpaint_command_completes_a_frame_with_no_hole_as_a_copy(tmp_path, capsys):
    """A user's video may have frames without a hole (the object left the view): ``triptych inpaint`` takes
    them (a benchmark refuses such a mask) and writes the frame unchanged; the other frames are completed."""
    frames, masks = _tennis_folders(tmp_path, n=3)
    Image.new("L", (432, 240), 0).save(masks / "00001.png")
    code = main(["inpaint", "--method", "mean_fill", "--frames", str(frames), "--masks", str(masks),
                 "--out", str(tmp_path / "out"), "--dilation", "4"])
    assert code == 0, capsys.readouterr().err
    assert np.array_equal(read_rgb(tmp_path / "out/00001.png"), read_rgb(frames / "00001.png"))
    assert not np.array_equal(read_rgb(tmp_path / "out/00000.png"), read_rgb(frames / "00000.png"))


def test_inpaint_command_names_a_missing_mask_and_a_size_mismatch(tmp_path, capsys):
    frames, masks = _tennis_folders(tmp_path)
    (masks / "00002.png").unlink()
    code = main(["inpaint", "--method", "telea", "--frames", str(frames), "--masks", str(masks), "--out",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "00002.png: mask missing for frame 00002.png" in err and "fix:" in err
    Image.new("L", (100, 50), 255).save(masks / "00002.png")
    code = main(["inpaint", "--method", "telea", "--frames", str(frames), "--masks", str(masks), "--out",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "00002.png: mask is 100x50, its frame 00002.png is 432x240" in err
    code = main(["inpaint", "--method", "linear_blend", "--frames", str(frames), "--masks", str(masks), "--out",
                 str(tmp_path / "out")])
    assert code == 2 and "not a video_inpainting one" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
