"""Face detection and identity embedding: the one owner of both, behind a small backend interface.

The face toolkit (docs/architecture.md, layer 2) of the face metrics (``metrics/face_sim.py``,
``metrics/face_div.py``), the portrait benchmarks and the ID dataset pipeline. Face similarity
(docs/protocols/personalization.md): detect and crop the face, embed it, and take the cosine to
the identity's real faces. The paper text says FaceNet, its appendix says ArcFace, and the maintainer
says "Choosing ArcFace will do" (PhotoMaker#162); no code was released. Each backend is therefore a
named metric variant (``metrics/specs/personalization.yaml``). Use an embedder that the scored
methods do not train with, and record which one: ``FaceBackend.weights`` records the files and their
sha256.

Backends implement ``FaceBackend``: ``detect(image) -> list[FaceBox]`` and ``embed(image, box) ->``
unit vector. ``DlibBackend`` (variant ``dlib``) is offline and CPU-only. It uses dlib's HOG frontal
face detector (upsampled once), the 5-point shape predictor for alignment and the ResNet face
recognition model (128-d). ``face_recognition`` wires the same three dlib models the same way.

Images are uint8 (H, W, 3) RGB arrays (``triptych.media.read_rgb``). Also accepted: float arrays
(H, W, 3) in [0, 1] and torch tensors (3, H, W) in [0, 1], which are clamped and rounded to uint8
(``to_uint8_rgb``). A path is read with ``read_rgb``.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, Union, runtime_checkable

import numpy as np
import torch
from PIL import Image

from triptych.errors import InputError, TriptychError
from triptych.media import read_rgb
from triptych.weights import per_file_cache

ImageLike = Union[np.ndarray, torch.Tensor, str, Path]

_INSTALL_FIX = "install the personalization extra: pip install 'triptych[personalization]'"


# --------------------------------------------------------------------------------------------------
# Inputs


def to_uint8_rgb(image: np.ndarray | torch.Tensor, name: str = "image") -> np.ndarray:
    """Any accepted image -> C-contiguous uint8 (H, W, 3) RGB.

    uint8 HWC arrays pass through. Float HWC arrays and float CHW tensors in [0, 1] are checked to be
    finite, clamped to [0, 1], and ``x * 255`` is rounded half to even, in the input's precision
    (float16 and bfloat16 are widened to float32 first). A uint8 image divided by 255 comes back
    unchanged.

    >>> t = torch.tensor([0.0, 0.5, 1.0, 1.2]).view(1, 1, 4).expand(3, 1, 4)
    >>> to_uint8_rgb(t)[0, :, 0].tolist()
    [0, 128, 255, 255]
    """
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"{name}: image has shape {image.shape}, expected (H, W, 3) RGB",
                             fix="pass RGB images (numpy HWC, or a torch tensor CHW)")
        if image.dtype == np.uint8:
            return np.ascontiguousarray(image)
        if not np.issubdtype(image.dtype, np.floating):
            raise InputError(f"{name}: unsupported image dtype {image.dtype}",
                             fix="pass uint8 images, or float images in [0, 1]")
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    elif isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise InputError(f"{name}: tensor has shape {tuple(image.shape)}, expected (3, H, W)",
                             fix="pass one RGB image as a float tensor (3, H, W) in [0, 1]")
        if not image.is_floating_point():
            raise InputError(f"{name}: tensor dtype {image.dtype} is not floating point",
                             fix="pass float tensors in [0, 1] (uint8 images as numpy HWC arrays)")
        tensor = image.detach().cpu()
    else:
        raise InputError(f"{name}: unsupported image type {type(image).__name__}",
                         fix="pass a uint8 (H, W, 3) array, a float (3, H, W) tensor in [0, 1], or a path")
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    if not torch.isfinite(tensor).all():
        raise InputError(f"{name}: image contains NaN or Inf", fix="fix the method's output")
    rounded = tensor.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return np.ascontiguousarray(rounded.permute(1, 2, 0).numpy())


def load_image(image: ImageLike, name: str | None = None) -> tuple[np.ndarray, str]:
    """An image and the name its errors use: a path is read (and names itself), the rest are converted."""
    if isinstance(image, (str, Path)):
        return read_rgb(image), name or str(image)
    name = name or "image"
    return to_uint8_rgb(image, name), name


class NoFaceError(InputError):
    """The detector found no face in an image. Face metrics never score such an image as 0: the error
    names the image, and a benchmark that keeps going records the image as unscored (PhotoMaker published
    no rule for this case; most tools drop the image, which biases the mean upwards, so the count of such
    images belongs next to the value)."""


# --------------------------------------------------------------------------------------------------
# The backend interface


@dataclass(frozen=True)
class FaceBox:
    """A detected face.

    The box is in pixels of the image passed to ``detect``. ``right`` and ``bottom`` are exclusive.
    The box may reach past the image border, since detectors return it unclipped.
    ``landmarks`` holds five (x, y) points when the detector gives them (RetinaFace: eye centres,
    nose tip, mouth corners), else ``None``.
    """

    left: float
    top: float
    right: float
    bottom: float
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = None

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def area(self) -> float:
        return self.width * self.height


@runtime_checkable
class FaceBackend(Protocol):
    """A face detector and embedder pair, named like the metric variant it implements.

    ``weights`` records each model file as ``{"name", "path", "sha256"}``, the shape of the weights
    record in docs/conventions.md.
    """

    name: str
    weights: tuple[dict[str, Any], ...]

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """uint8 (H, W, 3) RGB -> every face found, in the image's pixel coordinates (maybe none)."""

    def embed(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        """uint8 (H, W, 3) RGB and one of its boxes -> an L2-normalised float64 embedding (D,)."""

    def crop(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        """uint8 (H, W, 3) RGB and one of its boxes -> the uint8 RGB face crop the embedder sees."""


# --------------------------------------------------------------------------------------------------
# Pure functions over any backend


def detect_largest_face(image: ImageLike, backend: FaceBackend, name: str | None = None) -> FaceBox:
    """The largest face box (by area; ties go to the higher score).

    Raises ``InputError`` naming the image if the backend finds no face. A face is never scored as 0.
    """
    array, name = load_image(image, name)
    boxes = backend.detect(array)
    if not boxes:
        raise NoFaceError(
            f"{name}: no face found by the {backend.name!r} face detector "
            f"(image {array.shape[1]}x{array.shape[0]} WxH)",
            fix="face similarity needs a visible face in every image; check the image, or leave it out",
        )
    return max(boxes, key=lambda b: (b.area, b.score))


def face_embedding(image: ImageLike, backend: FaceBackend, name: str | None = None) -> np.ndarray:
    """The unit-length embedding of the image's largest face."""
    array, name = load_image(image, name)
    return backend.embed(array, detect_largest_face(array, backend, name))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity in float64, in [-1, 1]. A zero vector is an error, never a quiet 0.

    >>> cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0]))  # doctest: +ELLIPSIS
    0.7071...
    """
    a64, b64 = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a64.shape != b64.shape:
        raise TriptychError(f"cosine of embeddings of different sizes {a64.shape} and {b64.shape}",
                            fix="embed both images with the same face backend")
    norm = float(np.linalg.norm(a64) * np.linalg.norm(b64))
    if norm == 0.0 or not np.isfinite(norm):
        raise TriptychError("cosine of a zero or non-finite embedding is undefined",
                            fix="check the face backend's output")
    return float(np.dot(a64, b64) / norm)


def content_key(image: np.ndarray) -> str:
    """sha256 of a uint8 image's pixels and shape: equal keys mean identical images."""
    digest = hashlib.sha256(image.tobytes())
    digest.update(repr(image.shape).encode())
    return digest.hexdigest()


class EmbeddingCache:
    """Embeddings keyed by backend name and image content (sha256 of the uint8 pixels and shape).

    The key is the pixels, so a cached value is exactly what recomputing would give. One cache serves
    a whole scoring run, so each reference photo is detected and embedded once.
    """

    def __init__(self) -> None:
        self._store: dict[tuple[str, str], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._store)

    def embedding(self, image: ImageLike, backend: FaceBackend, name: str | None = None) -> np.ndarray:
        array, name = load_image(image, name)
        return self.lookup(backend.name, array, lambda a: face_embedding(a, backend, name))

    def lookup(self, namespace: str, image: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """The cached ``compute(image)`` under ``namespace`` (an encoder's name and weights), computed once.
        The CLIP and DINO metrics share this cache with the face backends."""
        key = (namespace, content_key(image))
        if key not in self._store:
            self._store[key] = compute(image)
        return self._store[key]


def face_crops(image: ImageLike, backend: FaceBackend | str = "arcface", *, name: str | None = None,
               all_faces: bool = False) -> list[np.ndarray]:
    """The aligned face crop(s) of an image, exactly what the backend's embedder sees, as uint8 RGB arrays.

    ``backend`` is a backend or its name: ``"arcface"`` (112x112, 5-point similarity transform onto the
    ArcFace template ``ARCFACE_TEMPLATE``), ``"facenet"`` (160x160, MTCNN box, no rotation, bilinear) or
    ``"dlib"`` (150x150 dlib face chip, padding 0.25). Default: the largest face only (one crop); with
    ``all_faces`` every detected face, largest first. No face raises ``NoFaceError``, never an empty list.
    For face diversity (LPIPS over crops).
    """
    chosen = face_backend(backend) if isinstance(backend, str) else backend
    array, name = load_image(image, name)
    if not all_faces:
        return [chosen.crop(array, detect_largest_face(array, chosen, name))]
    boxes = sorted(chosen.detect(array), key=lambda b: (b.area, b.score), reverse=True)
    if not boxes:
        detect_largest_face(array, chosen, name)  # raises NoFaceError with the standard message
    return [chosen.crop(array, box) for box in boxes]


def face_backend(name: str) -> FaceBackend:
    """The process-wide backend of a face variant name (``dlib``, ``arcface``, ``facenet``)."""
    loaders = {"dlib": dlib_backend, "arcface": arcface_backend, "facenet": facenet_backend}
    if name not in loaders:
        raise TriptychError(f"unknown face backend {name!r}", fix=f"use one of: {', '.join(loaders)}")
    return loaders[name]()


# --------------------------------------------------------------------------------------------------
# The dlib backend

DLIB_MAX_SIDE = 800  # preprocessing of the dlib variant (version 1); changing it needs a new version
DLIB_UPSAMPLE = 1
# Entries of the weights registry (triptych/data/weights.yaml): files of the face-recognition-models wheel.
DLIB_SHAPE_PREDICTOR = "dlib_shape_predictor_5"
DLIB_RECOGNITION_MODEL = "dlib_face_recognition_resnet_v1"


def downscale_longest_side(image: np.ndarray, max_side: int = DLIB_MAX_SIDE) -> tuple[np.ndarray, float]:
    """Shrink an image so its longest side is at most ``max_side``. Returns ``(image, scale)``.

    Resampling is PIL bicubic with antialiasing, to ``round(W * s) x round(H * s)``. Smaller images
    are returned unchanged with scale 1.0. This is the dlib variant's preprocessing: HOG detection
    over a 1332-px photo upsampled once (2x) is slow, and the 150-px aligned chip does not need more.
    """
    h, w = image.shape[:2]
    longest = max(h, w)
    if longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC), dtype=np.uint8)
    return np.ascontiguousarray(small), scale


class DlibBackend:
    """Face backend ``dlib``. dlib's HOG + linear SVM frontal face detector runs with one upsampling and
    detection threshold 0 (``detector.run(img, 1, 0.0)``), which gives the same boxes as
    ``detector(img, 1)``. The 5-point shape predictor aligns the face, and the ResNet model
    (``face_recognition_model_v1.compute_face_descriptor(img, shape, num_jitters=0)``) gives a 128-d
    descriptor: one aligned 150x150 chip, padding 0.25, no jittering. That descriptor is L2-normalised
    here. dlib trained it for Euclidean distance (same person below 0.6), not for cosine, so raw
    cosines of different people stay high (about 0.8 on the sample portraits) and the same person
    scores about 0.95.

    Preprocessing (variant version 1): every image is first shrunk to a longest side of at most
    ``DLIB_MAX_SIDE`` px (``downscale_longest_side``). Detection, landmarks and descriptor all run on
    the shrunk image, and boxes and landmarks are reported in the input's coordinates. The HOG detector
    gives no landmarks itself; ``detect`` adds the 5-point shape predictor's points (eye corners, nose base).
    """

    name = "dlib"

    def __init__(self, shape_predictor: dict[str, Any], recognition_model: dict[str, Any]) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise TriptychError("the dlib face backend needs the dlib package", fix=_INSTALL_FIX) from exc
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(shape_predictor["path"])
        self._encoder = dlib.face_recognition_model_v1(recognition_model["path"])
        self.weights: tuple[dict[str, Any], ...] = (shape_predictor, recognition_model)

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        small, scale = downscale_longest_side(to_uint8_rgb(image))
        rects, scores, _ = self._detector.run(small, DLIB_UPSAMPLE, 0.0)
        faces = []
        for r, s in zip(rects, scores):
            shape = self._predictor(small, r)  # 5 points: the two corners of each eye and the base of the nose
            points = tuple((shape.part(i).x / scale, shape.part(i).y / scale) for i in range(shape.num_parts))
            faces.append(FaceBox(r.left() / scale, r.top() / scale, (r.right() + 1) / scale,
                                 (r.bottom() + 1) / scale, float(s), points))
        return faces

    def embed(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        small, scale = downscale_longest_side(to_uint8_rgb(image))
        # dlib rectangles are inclusive: right = left + width - 1. The box came from detect() on the same
        # image, so box * scale is an integer up to float error and round() recovers it exactly.
        rect = self._dlib.rectangle(round(box.left * scale), round(box.top * scale),
                                    round(box.right * scale) - 1, round(box.bottom * scale) - 1)
        shape = self._predictor(small, rect)
        descriptor = np.asarray(self._encoder.compute_face_descriptor(small, shape, num_jitters=0),
                                dtype=np.float64)
        norm = float(np.linalg.norm(descriptor))
        if norm == 0.0 or not np.isfinite(norm):
            raise TriptychError("dlib returned a zero or non-finite face descriptor",
                                fix="check the dlib installation (dlib-bin) and the model files' sha256")
        return descriptor / norm

    def crop(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        """The 150x150 chip (padding 0.25) the ResNet embeds, cut from the shrunk image."""
        small, scale = downscale_longest_side(to_uint8_rgb(image))
        rect = self._dlib.rectangle(round(box.left * scale), round(box.top * scale),
                                    round(box.right * scale) - 1, round(box.bottom * scale) - 1)
        return np.asarray(self._dlib.get_face_chip(small, self._predictor(small, rect), size=150, padding=0.25),
                          dtype=np.uint8)


@functools.lru_cache(maxsize=1)
def dlib_backend() -> DlibBackend:
    """The process-wide dlib backend, loaded once.

    ``triptych.weights`` finds its two model files inside the installed face-recognition-models wheel.
    That lookup does not import the package, whose ``pkg_resources`` import fails with
    setuptools >= 82. It checks each file against its pinned sha256 and returns the provenance record
    ``{"name", "path", "sha256", "registered"}``.
    """
    from triptych import weights

    return DlibBackend(weights.describe(DLIB_SHAPE_PREDICTOR), weights.describe(DLIB_RECOGNITION_MODEL))


def _unit_vector(vector: np.ndarray, who: str) -> np.ndarray:
    out = np.asarray(vector, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(out))
    if norm == 0.0 or not np.isfinite(norm):
        raise TriptychError(f"the {who} embedder returned a zero or non-finite embedding",
                            fix="check the model file's sha256 and the input image")
    return out / norm


def _need_landmarks(box: FaceBox, who: str) -> np.ndarray:
    if box.landmarks is None or len(box.landmarks) != 5:
        raise TriptychError(f"the {who} alignment needs the detector's 5 landmarks (eye centres, nose tip, "
                            "mouth corners)", fix="pass a box from this backend's detect()")
    return np.asarray(box.landmarks, dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# The ArcFace backend (insightface buffalo_l models, ONNX)

ARCFACE_SIZE = 112
# insightface.utils.face_align.arcface_dst: where the 5 landmarks land in the 112x112 ArcFace crop
# (left eye, right eye, nose tip, left mouth corner, right mouth corner; image left/right).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
SCRFD_SIZE = (640, 640)  # insightface FaceAnalysis det_size
SCRFD_THRESHOLD = 0.5  # insightface FaceAnalysis det_thresh
ARCFACE_RECOGNIZER = "arcface_w600k_r50"
ARCFACE_DETECTOR = "scrfd_det_10g"


def align_arcface(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 112x112 ArcFace crop and its 2x3 matrix: the least-squares similarity transform (skimage
    ``SimilarityTransform.estimate``) of the 5 landmarks onto ``ARCFACE_TEMPLATE``, applied with
    ``cv2.warpAffine`` (bilinear, black border): ``insightface.utils.face_align.norm_crop2``."""
    from insightface.utils import face_align

    crop, matrix = face_align.norm_crop2(np.ascontiguousarray(image), np.asarray(landmarks, np.float32),
                                         image_size=ARCFACE_SIZE)
    return np.ascontiguousarray(crop, dtype=np.uint8), np.asarray(matrix, dtype=np.float64)


def onnx_providers(device: str = "cpu") -> list[str]:
    """onnxruntime providers: ``device`` ``cuda`` puts the CUDA provider first (onnxruntime falls back to the
    CPU where it has none)."""
    return (["CUDAExecutionProvider"] if device.startswith("cuda") else []) + ["CPUExecutionProvider"]


INSIGHTFACE_TASKS = {"detection": "SCRFD (9 outputs: scores, boxes, 5 landmarks at strides 8/16/32, 2 anchors)",
                     "recognition": "ArcFace (one square input of at least 112 px -> one embedding)"}


def insightface_model(record: dict[str, Any], task: str, device: str = "cpu") -> Any:
    """insightface's own reader of an ONNX file, ``insightface.model_zoo.get_model``: it picks the class from
    the graph (five or more outputs: ``SCRFD``; a square input of at least 112 px: ``ArcFaceONNX``, which also
    reads the input normalisation from the graph's first nodes). A file read as another task is refused."""
    try:
        from insightface.model_zoo import get_model
    except ImportError as exc:
        raise TriptychError(f"the insightface face {task} model needs insightface and onnxruntime",
                            fix=_INSTALL_FIX) from exc
    model = get_model(str(record["path"]), providers=onnx_providers(device))
    if getattr(model, "taskname", None) != task:
        found = getattr(model, "taskname", None) or "no model"
        raise TriptychError(f"{record['path']}: insightface's model_zoo reads this ONNX file as {found}, not as a "
                            f"{task} model", fix=f"give the {INSIGHTFACE_TASKS[task]} file ({record.get('name')})")
    return model


class FaceDetector(Protocol):
    """A detector alone: ``detect(image) -> list[FaceBox]`` and the records of its files."""

    name: str
    weights: tuple[dict[str, Any], ...]

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """uint8 (H, W, 3) RGB -> every face found, in the image's pixel coordinates."""


class ScrfdDetector:
    """insightface's SCRFD (buffalo_l ``det_10g.onnx``, antelopev2 ``scrfd_10g_bnkps.onnx``) read by
    ``insightface_model``, at 640x640, threshold 0.5, NMS 0.4: boxes and 5 landmarks, highest score first.
    ``detect`` takes another ``input_size`` for PhotoMaker v2's retries (``photomaker_faces``)."""

    name = "scrfd"

    def __init__(self, record: dict[str, Any], device: str = "cpu") -> None:
        self._model = insightface_model(record, "detection", device)
        self._model.prepare(-1 if device == "cpu" else 0, input_size=SCRFD_SIZE, det_thresh=SCRFD_THRESHOLD)
        self.weights: tuple[dict[str, Any], ...] = (record,)

    def detect(self, image: np.ndarray, input_size: tuple[int, int] = SCRFD_SIZE) -> list[FaceBox]:
        bgr = np.ascontiguousarray(to_uint8_rgb(image)[:, :, ::-1])
        boxes, points = self._model.detect(bgr, input_size=input_size)
        return [FaceBox(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(b[4]),
                        tuple((float(x), float(y)) for x, y in kps))
                for b, kps in zip(boxes, points)]


class RetinaFaceBoxes:
    """RetinaFace (``triptych.vision.retinaface``) as a ``FaceDetector``: the inference recipe's rows with
    a score of at least ``min_score`` (the recipe's ``vis_thres`` is 0.6; 0 keeps every row)."""

    name = "retinaface"

    def __init__(self, detector: Any, min_score: float = 0.0) -> None:
        self.detector = detector
        self.min_score = min_score
        self.weights: tuple[dict[str, Any], ...] = (detector.weights,)

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        return self.boxes(self.detector.detect(to_uint8_rgb(image)))

    def boxes(self, rows: np.ndarray) -> list[FaceBox]:
        """Recipe rows [K, 15] -> the boxes of at least ``min_score``, in row order."""
        return [FaceBox(*map(float, r[:5]), tuple((float(r[5 + 2 * k]), float(r[6 + 2 * k])) for k in range(5)))
                for r in rows if r[4] >= self.min_score]


DETECTORS = ("retinaface", "dlib", "scrfd")


def face_detector(name: str, backbone: str = "mobilenet0.25", weights_file: str | Path | None = None,
                  device: str = "cpu", min_score: float = 0.0) -> FaceDetector:
    """A detector by name: ``retinaface`` (``backbone``, the registered checkpoint or ``weights_file``),
    ``dlib`` (HOG, the dlib backend's detector) or ``scrfd`` (insightface's det_10g)."""
    from triptych import weights

    if name not in DETECTORS:
        raise TriptychError(f"unknown face detector {name!r}", fix=f"use one of: {', '.join(DETECTORS)}")
    if name != "retinaface" and weights_file is not None:
        raise TriptychError(f"--weights applies to the retinaface backend, not {name!r}",
                            fix=f"import {name}'s file with 'triptych weights import' instead")
    if name == "dlib":
        return dlib_backend()
    if name == "scrfd":
        return ScrfdDetector(weights.describe(ARCFACE_DETECTOR))
    from triptych.vision.retinaface import retinaface_detector

    return RetinaFaceBoxes(retinaface_detector(backbone, weights_file, device), min_score)


def detection_rows(boxes: Sequence[FaceBox]) -> list[list[float]]:
    """Rows [x1, y1, x2, y2, score, x_1, y_1, ..., x_5, y_5] (landmarks null when the detector has none)."""
    return [[b.left, b.top, b.right, b.bottom, b.score]
            + ([c for point in b.landmarks for c in point] if b.landmarks else [None] * 10) for b in boxes]


class ArcFaceBackend:
    """Face backend ``arcface``, what insightface's ``FaceAnalysis`` (buffalo_l) does for one image:
    SCRFD-10GF (``det_10g.onnx``) detection at 640x640 with threshold 0.5 gives boxes and 5 landmarks; the
    face is aligned by ``align_arcface``; ``w600k_r50.onnx``, read by insightface's ``ArcFaceONNX``
    (``insightface_model``), embeds the RGB crop scaled to (x - 127.5) / 127.5 (NCHW float32; ``get_feat``)
    into 512-d, L2-normalised here (``raw_embedding`` keeps insightface's raw vector).

    ``detector`` is the SCRFD file's record, any ``FaceDetector`` (the ID pipeline passes RetinaFace), or
    ``None``: the backend then only embeds boxes that carry landmarks (tests, and the ``id_verify`` stage,
    which embeds the boxes ``id_detect`` found).
    """

    name = "arcface"

    def __init__(self, recognizer: dict[str, Any], detector: dict[str, Any] | FaceDetector | None,
                 device: str = "cpu") -> None:
        self.recognizer = insightface_model(recognizer, "recognition", device)
        self._detector = ScrfdDetector(detector, device) if isinstance(detector, dict) else detector
        detector_files = self._detector.weights if self._detector is not None else ()
        self.weights: tuple[dict[str, Any], ...] = (recognizer, *detector_files)

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        if self._detector is None:
            raise TriptychError("this arcface backend was built without a detector",
                                fix="use arcface_backend(), which loads scrfd_det_10g")
        return self._detector.detect(image)

    def crop(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        return align_arcface(to_uint8_rgb(image), _need_landmarks(box, "arcface"))[0]

    def raw_embedding(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        """insightface's ``faces[i]['embedding']``: ``ArcFaceONNX.get_feat`` of the aligned crop (BGR, as
        insightface passes it), not normalised."""
        crop = self.crop(image, box)
        return np.asarray(self.recognizer.get_feat(np.ascontiguousarray(crop[:, :, ::-1])), np.float32).ravel()

    def embed(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        return _unit_vector(self.raw_embedding(image, box), "arcface")


@per_file_cache(maxsize=1)
def arcface_backend(trunk: Path | None = None) -> ArcFaceBackend:
    """The process-wide ArcFace backend; both ONNX files come sha256-checked from ``triptych.weights``;
    ``trunk`` a user's recognition ONNX in place of w600k_r50 (``measure --weights``), read by insightface's
    own ``model_zoo`` as the registry's is; detection stays the registry's SCRFD."""
    from triptych import weights

    recognizer = weights.describe(ARCFACE_RECOGNIZER) if trunk is None else weights.describe_user_file(trunk)
    return ArcFaceBackend(recognizer, weights.describe(ARCFACE_DETECTOR))


# --------------------------------------------------------------------------------------------------
# The FaceNet backend (facenet-pytorch)

FACENET_SIZE = 160  # facenet-pytorch MTCNN(image_size=160, margin=0)
FACENET_RECOGNIZER = "facenet_vggface2"
MTCNN_WEIGHTS = ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
VGGFACE2_CLASSES = 8631


def build_facenet() -> torch.nn.Module:
    """facenet-pytorch's InceptionResnetV1 with the VGGFace2 logits layer (so the checkpoint loads strictly),
    returning embeddings (``classify=False``), randomly initialised."""
    from facenet_pytorch import InceptionResnetV1

    model = InceptionResnetV1(pretrained=None, classify=True, num_classes=VGGFACE2_CLASSES)
    model.classify = False
    return model.eval()


class FaceNetBackend:
    """Face backend ``facenet``, facenet-pytorch's pipeline: MTCNN (P/R/O-Net from the facenet-pytorch
    wheel, defaults: min face 20 px, thresholds 0.6/0.7/0.7, factor 0.709) gives boxes and 5 landmarks;
    the box (margin 0) is cropped and resized to 160x160 (PIL bilinear, ``extract_face``); the crop is
    standardised as (x - 127.5) / 128 (``fixed_image_standardization``) and InceptionResnetV1 (VGGFace2)
    gives a 512-d L2-normalised embedding. No rotation: FaceNet was trained on box crops."""

    name = "facenet"

    def __init__(self, model: torch.nn.Module, recognizer: dict[str, Any],
                 mtcnn_state: Sequence[tuple[dict[str, Any], dict[str, torch.Tensor]]]) -> None:
        from facenet_pytorch import MTCNN

        self._mtcnn = MTCNN(image_size=FACENET_SIZE, margin=0, device="cpu")
        for net, (_, state) in zip((self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet), mtcnn_state):
            net.load_state_dict(state, strict=True)
        self._model = model.eval()
        self.weights: tuple[dict[str, Any], ...] = (recognizer, *(record for record, _ in mtcnn_state))

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        with torch.no_grad():
            boxes, probs, points = self._mtcnn.detect(Image.fromarray(to_uint8_rgb(image)), landmarks=True)
        if boxes is None:
            return []
        return [FaceBox(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(p),
                        tuple((float(x), float(y)) for x, y in kps)) for b, p, kps in zip(boxes, probs, points)]

    def crop(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        from facenet_pytorch.models.utils.detect_face import extract_face

        face = extract_face(Image.fromarray(to_uint8_rgb(image)), np.array([box.left, box.top, box.right, box.bottom]),
                            image_size=FACENET_SIZE, margin=0)
        return np.ascontiguousarray(face.permute(1, 2, 0).numpy().round().clip(0, 255).astype(np.uint8))

    def embed(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        crop = torch.from_numpy(self.crop(image, box).astype(np.float32)).permute(2, 0, 1)[None]
        with torch.no_grad():
            out = self._model((crop - 127.5) / 128.0)[0].numpy()
        return _unit_vector(out, "facenet")


@per_file_cache(maxsize=1)
def facenet_backend(trunk: Path | None = None) -> FaceNetBackend:
    """The process-wide FaceNet backend; all four files come sha256-checked from ``triptych.weights``;
    ``trunk`` a user's InceptionResnetV1 state dict (with the VGGFace2 logits layer) in place of the
    registry's recogniser (``measure --weights``), loaded strictly; MTCNN stays the registry's."""
    from triptych import weights

    model = build_facenet()
    try:
        model.load_state_dict(weights.load_trunk(FACENET_RECOGNIZER, trunk), strict=True)
    except RuntimeError as exc:
        raise TriptychError(f"{trunk or FACENET_RECOGNIZER}: does not load strictly into facenet-pytorch's "
                            f"InceptionResnetV1 ({str(exc)[:300]})",
                            fix="pass a state dict of the layout of facenet_vggface2") from exc
    mtcnn = [(weights.describe(n), weights.load(n)) for n in MTCNN_WEIGHTS]
    record = weights.describe(FACENET_RECOGNIZER) if trunk is None else weights.describe_user_file(trunk)
    return FaceNetBackend(model, record, mtcnn)
