"""FID with clean resizing (docs/protocols/personalization.md: "FID with clean resizing (Parmar et al., clean-fid)").

Variant ``clean`` (version 1):

- Network: the TensorFlow FID Inception (inception-2015-12-05) as ported by pytorch-fid: torchvision's
  Inception v3 with 1008 classes and pytorch-fid's patched blocks (``FIDInceptionA/C/E_1/E_2`` at Mixed_5b
  ... Mixed_7c, as ``pytorch_fid.inception.fid_inception_v3`` builds it), weights entry ``inception_fid``
  (``pt_inception-2015-12-05-6726825d.pth``, sha256-pinned) loaded strictly through ``triptych.weights``
  (pytorch-fid's own constructor would download). Features: the 2048-d average pool after Mixed_7c
  (pytorch-fid's block 3). Input in [0, 1] is scaled to [-1, 1] (``2x - 1``, pytorch-fid's
  ``normalize_input``). clean-fid itself runs NVIDIA's TorchScript export of the same TF graph; values from
  the two ports are close, not bit-identical.
- Resizing: clean-fid's "clean" mode (``make_resizer("PIL", quantize_after=False, "bicubic", (299, 299))``):
  the uint8 RGB image, each channel separately as a float32 PIL image (mode ``F``), resized with PIL
  bicubic to 299x299, clipped to [0, 255], no re-quantisation; then divided by 255.
- Distance: ``triptych.metrics.frechet.frechet_distance`` on the float32 features: the pytorch-fid /
  clean-fid formula (means, ``np.cov`` covariances) with tr sqrt(S1 S2) from a symmetric eigen-decomposition,
  defined even when fewer images than 2048 make the covariances singular. It is not always within 1e-6 of
  the scipy-sqrtm value clean-fid computes: on full-rank covariances it is, but where scipy succeeds on a
  singular product the two can differ by more (2.8e-6 relative on 16 vs 16 images, ranks 15), and the
  eigen-decomposition value is the closer one to the exact low-rank value. scipy's own is not computed
  (minutes at 2048 dimensions); the exact low-rank value and the covariance ranks go in ``extras``.

Each image is one forward pass (batch size 1), so no batch size can change a feature.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

from triptych.errors import InputError, TriptychError
from triptych.metrics.frechet import frechet_distance
from triptych.vision.face import ImageLike, load_image
from triptych.weights import per_file_cache

FID_SIZE = 299
FID_WEIGHTS = "inception_fid"


def clean_resize(image: np.ndarray, size: int = FID_SIZE) -> np.ndarray:
    """clean-fid's resize: uint8 (H, W, 3) -> float32 (size, size, 3) in [0, 255], one float32 PIL image
    (mode ``F``) per channel, PIL bicubic, clipped, not rounded."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"clean resize expects uint8 (H, W, 3), got {image.dtype} {image.shape}",
                         fix="read images with triptych.media.read_rgb")
    channels = []
    for c in range(3):
        plane = Image.fromarray(np.ascontiguousarray(image[:, :, c], dtype=np.float32))  # mode F
        channels.append(np.asarray(plane.resize((size, size), resample=Image.Resampling.BICUBIC)).clip(0, 255))
    return np.stack(channels, axis=2).astype(np.float32)


def clean_input(image: np.ndarray) -> torch.Tensor:
    """(1, 3, 299, 299) float32 in [0, 1]: ``clean_resize``, then / 255 (clean-fid's 'clean' mode)."""
    return torch.from_numpy(clean_resize(image) / np.float32(255.0)).permute(2, 0, 1).unsqueeze(0)


def bilinear_input(image: np.ndarray) -> torch.Tensor:
    """(1, 3, 299, 299) float32 in [0, 1]: uint8 / 255, then bilinear to 299x299, align_corners False
    (pytorch-fid's ``InceptionV3(resize_input=True)``, as DEVIL @ d339a12 ``src/fid`` vendors it)."""
    x = torch.from_numpy(image.astype(np.float32) / np.float32(255.0)).permute(2, 0, 1).unsqueeze(0)
    return torch.nn.functional.interpolate(x, size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)


RESIZES = {"clean": clean_input, "bilinear": bilinear_input}
RESIZE_NOTES = {"clean": "clean-fid PIL bicubic 299 per channel, float, no quantisation",
                "bilinear": "uint8 / 255, torch bilinear 299 (align_corners False), pytorch-fid resize_input"}


class FidInception(torch.nn.Module):
    """pytorch-fid's FID Inception up to the 2048-d pool (``fid_inception_v3`` without its download)."""

    def __init__(self) -> None:
        super().__init__()
        import torchvision
        from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2

        net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
        net.Mixed_5b = FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = FIDInceptionE_1(1280)
        net.Mixed_7c = FIDInceptionE_2(2048)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 299, 299) in [0, 1] -> (N, 2048)."""
        n = self.net
        x = 2 * x - 1
        for layer in (n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3, n.maxpool1, n.Conv2d_3b_1x1,
                      n.Conv2d_4a_3x3, n.maxpool2, n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b,
                      n.Mixed_6c, n.Mixed_6d, n.Mixed_6e, n.Mixed_7a, n.Mixed_7b, n.Mixed_7c, n.avgpool):
            x = layer(x)
        return torch.flatten(x, 1)


@dataclass(frozen=True)
class FidNetwork:
    """The Inception and the record of its weights (the registry's, or a test's weights-rule hash)."""

    model: FidInception
    weights: dict[str, Any]

    @torch.no_grad()
    def features(self, image: np.ndarray, resize: str = "clean") -> np.ndarray:
        """uint8 (H, W, 3) -> float32 (2048,) after the ``resize`` of ``RESIZES``."""
        return self.model(RESIZES[resize](image))[0].numpy()


@per_file_cache(maxsize=2)
def fid_network(trunk: Path | None = None) -> FidNetwork:
    """The registry's FID Inception (``inception_fid``), loaded strictly once per process; ``trunk`` a
    user's file of the same architecture in its place (``measure --weights``), recorded as user-supplied."""
    from triptych import weights

    record = (weights.describe(FID_WEIGHTS) if trunk is None
              else {**weights.describe_user_file(trunk), "replaces": FID_WEIGHTS})
    model = FidInception()
    model.net.load_state_dict(weights.load_trunk(FID_WEIGHTS, trunk), strict=True)
    return FidNetwork(model.eval(), record)


def inception_features(images: Sequence[ImageLike], network: FidNetwork | None = None,
                       names: Sequence[str] | None = None, resize: str = "clean") -> np.ndarray:
    """(N, 2048) float32 Inception features of ``images`` (paths, uint8 HWC or float CHW), resized by
    ``RESIZES[resize]``."""
    network = network or fid_network()
    rows = []
    for i, image in enumerate(images):
        array, _ = load_image(image, names[i] if names is not None else None)
        rows.append(network.features(array, resize))
    if not rows:
        raise InputError("no images to extract Inception features from", fix="pass at least two images per set")
    return np.stack(rows)


@dataclass
class SetResult:
    """One set-level value (FID, KID) with what produced it: ``count`` = generated images scored."""

    value: float
    count: int
    reduction: str
    weights: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    # (real, generated) feature matrices, generated rows in the order the images were given, and the value
    # as a function of them: what a bootstrap over the generated set resamples (triptych.stats.set_interval)
    features: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    recompute: Callable[[np.ndarray, np.ndarray], float] | None = field(default=None, repr=False)

    def extras(self) -> dict[str, Any]:
        return dict(self.details)

    def with_features(self, real: np.ndarray, generated: np.ndarray,
                      recompute: Callable[[np.ndarray, np.ndarray], float]) -> "SetResult":
        return dataclasses.replace(self, features=(real, generated), recompute=recompute)


def fid_value(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two feature matrices, the number only (a bootstrap's statistic)."""
    return float(frechet_distance(real, fake, with_reference=False).value)


def fid_from_features(real: np.ndarray, fake: np.ndarray, weights: dict[str, Any],
                      resize: str = "clean") -> SetResult:
    """FID of two feature matrices (``frechet_distance``); extras carry the exact low-rank value and the ranks.
    scipy's sqrtm is skipped: at 2048 dimensions it takes minutes; the eigen-decomposition value is within
    1e-6 of it on full-rank covariances and closer than it to the exact low-rank value on singular ones
    (module docstring, ``metrics/frechet.py``)."""
    result = frechet_distance(real, fake, with_reference=False)
    if not np.isfinite(result.value):
        raise TriptychError("FID is not finite", fix="check the images")
    return SetResult(result.value, result.n_fake, f"frechet distance, {result.n_fake} generated vs "
                     f"{result.n_real} real images ({resize} resize 299, pytorch-fid Inception pool3)", weights,
                     {**result.extras(), "resize": RESIZE_NOTES[resize]})


def fid_clean(real: Sequence[ImageLike], generated: Sequence[ImageLike], *, network: FidNetwork | None = None,
              trunk: Path | None = None) -> SetResult:
    """Metric ``fid``, variant ``clean``: FID between real and generated image sets (each >= 2 images);
    ``trunk`` a user's Inception file instead of the registry's."""
    network = network or fid_network(trunk)
    real_f, fake_f = inception_features(real, network), inception_features(generated, network)
    return fid_from_features(real_f, fake_f, network.weights).with_features(real_f, fake_f, fid_value)


def frame_fid_devil(real: Sequence[ImageLike], generated: Sequence[ImageLike], *, network: FidNetwork | None = None,
                    trunk: Path | None = None) -> SetResult:
    """Metric ``frame_fid``, variant ``devil``: FID over the frames of the videos, each frame one sample.

    DEVIL @ d339a12 ``fid_computer.py`` + ``src/fid/util.py extract_video_frame_features``: every ground-truth
    frame and every composited frame (``get_comp_frame``) of every video, ``uint8 / 255`` float32, through
    its vendored pytorch-fid ``InceptionV3([block 2048])`` (``resize_input``: bilinear to 299,
    ``normalize_input``: 2x - 1, the FID Inception weights), the 2048-d pool; ``np.cov`` of each set and
    the pytorch-fid Fréchet formula. Here the distance is ``frechet_distance``'s (as ``fid_clean``: the
    eigen-decomposition trace, never the scipy-sqrtm crash on singular covariances). The frames are the
    image files of ``--pred`` / ``--gt`` (a folder of video folders): pass composited predictions.
    """
    network = network or fid_network(trunk)
    real_f = inception_features(real, network, resize="bilinear")
    fake_f = inception_features(generated, network, resize="bilinear")
    return fid_from_features(real_f, fake_f, network.weights, "bilinear").with_features(real_f, fake_f, fid_value)
