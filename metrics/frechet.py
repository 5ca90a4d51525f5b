"""Fréchet distance between two sets of feature vectors: the reference formula and an exact low-rank one.

``frechet_distance_reference`` reproduces E2FGVI @ 709cbe3 ``core/metrics.py`` ``calculate_vfid`` ->
``calculate_frechet_distance`` (the pytorch-fid formula), as docs/protocols/video_completion.md
("VFID") states it:

- means ``np.mean(features, axis=0)`` keep the features' dtype (float32), and so does ``diff = m1 - m2``;
- covariances ``np.cov(features, rowvar=False)``: float64, ddof = 1;
- ``covmean = scipy.linalg.sqrtm(s1 @ s2, disp=False)``; if it is not all finite, ``1e-6 * I`` is added to
  both covariances and ``sqrtm`` runs again; a complex result keeps its real part unless an imaginary
  part on the diagonal exceeds 1e-3, where the reference raises ``ValueError('Imaginary component ...')``;
- ``d = diff @ diff + tr(s1) + tr(s2) - 2 tr(covmean)``.

With N videos in 1024 dimensions (N = 50 on DAVIS) both covariances have rank <= N - 1, and ``sqrtm`` of
their singular product is ill-posed: the reference then crashes with 'Imaginary component' (E2FGVI#82,
ProPainter#55). So the metric (``frechet_distance``) takes the trace of the square root from a symmetric
eigen-decomposition instead, which is defined for every pair of PSD covariances:

    tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2) = sum_i sqrt(lambda_i),

S1^1/2 from ``eigh(S1)`` and lambda_i the eigenvalues of the symmetric PSD matrix S1^1/2 S2 S1^1/2 (also by
``eigh``). Eigenvalues at or below the rank tolerance (largest * dim * float64 eps, numpy's matrix_rank
rule) are rounding noise of a zero and count as 0. On full-rank covariances this equals scipy's sqrtm
result within 1e-6 relative (tested); where scipy's succeeds on a singular product the two need not agree
to 1e-6 (the fixture's 6-clip set: 1.2e-7; 16 vs 16 feature vectors in 2048-d, ranks 15: 2.8e-6, with
this value the closer one to ``frechet_distance_lowrank``'s exact one). The reference's scipy value, or its error, is kept beside the
metric's value (``reference_value`` / ``reference_error``), with both covariance ranks and the exact
low-rank value:

``frechet_distance_lowrank`` is exact for any set sizes: with centred feature matrices Xr (n x d) and
Xf (m x d), the non-zero eigenvalues of S1 S2 are the squared singular values of
M = Xr Xf^T / sqrt((n - 1)(m - 1)) (n x m), so tr sqrt(S1 S2) is the nuclear norm of M, all in float64.
It is a cross-check reported in ``extras``, never silently substituted.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.linalg

from triptych.errors import InputError, TriptychError

SQRTM_OFFSET = 1e-6  # the reference's fallback offset
IMAG_DIAG_ATOL = 1e-3  # the reference's np.allclose(diag.imag, 0, atol=1e-3)


@dataclass(frozen=True)
class FrechetResult:
    """One Fréchet distance and how it was computed (everything a reader needs to trust it)."""

    value: float  # the metric: tr sqrt(S1 S2) by symmetric eigen-decomposition (module doc)
    exact_lowrank: float  # the exact float64 value (nuclear-norm identity)
    n_real: int
    n_fake: int
    dim: int
    rank_real: int  # rank of the real covariance (= rank of the centred real features)
    rank_fake: int
    sq_mean_diff: float  # |m1 - m2|^2 with the means in the features' dtype, as the reference
    trace_real: float
    trace_fake: float
    trace_covmean: float  # tr sqrt(S1 S2) as the value used it
    trace_covmean_exact: float  # the nuclear norm
    reference_value: float | None  # E2FGVI's scipy-sqrtm formula, None where it fails
    reference_error: str | None  # why the reference formula has no value (its 'Imaginary component' crash)
    sqrtm_offset_used: bool  # True when the reference's 1e-6 offset fallback ran
    max_abs_imag_diag: float  # largest |imag| on the reference covmean's diagonal (0 for a real result)

    def extras(self) -> dict[str, Any]:
        """The fields for a result's ``extras`` (covariance ranks included, as docs/conventions.md asks)."""
        return asdict(self)


def as_feature_matrix(features: Any, name: str) -> np.ndarray:
    """Stack a set of feature vectors as an (n, d) array of their own float dtype; n >= 2, all finite."""
    array = np.asarray(features)
    if array.ndim != 2:
        raise InputError(f"{name}: features have shape {array.shape}, expected (videos, dim)",
                         fix="pass one feature vector per video")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    if array.shape[0] < 2:
        raise InputError(f"{name}: a Fréchet distance needs at least two videos, got {array.shape[0]}",
                         fix="score a set of two or more videos, or cut clips with --clip-len / --clip-stride")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: features contain NaN or Inf", fix="check the feature extractor and its inputs")
    return array


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """``scipy.linalg.sqrtm(matrix, disp=False)[0]``, silent on every scipy (``disp`` is deprecated in 1.17
    and removed in 1.18; ``disp=True`` in older versions prints to stdout, which would corrupt --json)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            out = scipy.linalg.sqrtm(matrix, disp=False)
        except TypeError:
            out = scipy.linalg.sqrtm(matrix)
    return np.asarray(out[0] if isinstance(out, tuple) else out)


def covariance_rank(features: np.ndarray) -> int:
    """Rank of ``np.cov(features, rowvar=False)``, computed from the centred (n, d) features in float64."""
    x = np.asarray(features, dtype=np.float64)
    return int(np.linalg.matrix_rank(x - x.mean(axis=0)))


def lowrank_trace_sqrt(real: np.ndarray, fake: np.ndarray) -> float:
    """tr sqrt(S1 S2) exactly, as the nuclear norm of Xr_c Xf_c^T / sqrt((n - 1)(m - 1)), in float64.

    >>> rng = np.random.default_rng(0); a, b = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    >>> s = scipy.linalg.sqrtm(np.cov(a, rowvar=False) @ np.cov(b, rowvar=False))
    >>> bool(np.isclose(lowrank_trace_sqrt(a, b), np.trace(s).real))
    True
    """
    xr = np.asarray(real, dtype=np.float64)
    xf = np.asarray(fake, dtype=np.float64)
    xr = xr - xr.mean(axis=0)
    xf = xf - xf.mean(axis=0)
    cross = (xr @ xf.T) / np.sqrt((xr.shape[0] - 1) * (xf.shape[0] - 1))
    return float(np.linalg.svd(cross, compute_uv=False).sum())


def frechet_distance_lowrank(real: Any, fake: Any) -> float:
    """The exact Fréchet distance, all in float64 from the features: |m1 - m2|^2 + tr S1 + tr S2
    - 2 tr sqrt(S1 S2), the traces as sums of squared centred features / (n - 1)."""
    xr = as_feature_matrix(real, "real").astype(np.float64)
    xf = as_feature_matrix(fake, "fake").astype(np.float64)
    _check_dims(xr, xf)
    diff = xr.mean(axis=0) - xf.mean(axis=0)
    return float(diff @ diff) + _trace_cov(xr) + _trace_cov(xf) - 2.0 * lowrank_trace_sqrt(xr, xf)


def _trace_cov(x: np.ndarray) -> float:
    centred = x - x.mean(axis=0)
    return float(np.sum(centred * centred) / (x.shape[0] - 1))


def _check_dims(real: np.ndarray, fake: np.ndarray) -> None:
    if real.shape[1] != fake.shape[1]:
        raise InputError(f"feature sets of different dimensions: {real.shape[1]} and {fake.shape[1]}",
                         fix="extract both sets with the same network")


def eigh_trace_sqrt(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr sqrt(S1 S2) for symmetric PSD S1, S2 by two symmetric eigen-decompositions (module doc).

    >>> rng = np.random.default_rng(0); a, b = rng.normal(size=(40, 8)), rng.normal(size=(30, 8))
    >>> s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    >>> bool(np.isclose(eigh_trace_sqrt(s1, s2), np.trace(scipy.linalg.sqrtm(s1 @ s2)).real, rtol=1e-10))
    True
    """
    w1, v1 = np.linalg.eigh(s1)
    root1 = (v1 * np.sqrt(np.clip(w1, 0.0, None))) @ v1.T
    inner = root1 @ s2 @ root1
    lam = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    tol = max(float(lam.max(initial=0.0)), 0.0) * lam.size * np.finfo(np.float64).eps
    return float(np.sqrt(lam[lam > tol]).sum())


class _ReferenceCrash(Exception):
    """The reference formula raised (its value is undefined); carries the reference's own reason."""


def _reference_trace_sqrt(s1: np.ndarray, s2: np.ndarray) -> tuple[float, bool, float]:
    """The reference's real tr sqrtm(S1 S2) with its offset fallback: (trace, offset used, max |imag diag|)."""
    covmean = _sqrtm(s1 @ s2)
    offset_used = not np.isfinite(covmean).all()
    if offset_used:
        offset = np.eye(s1.shape[0]) * SQRTM_OFFSET
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
    max_imag_diag = 0.0
    if np.iscomplexobj(covmean):
        max_imag_diag = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAG_DIAG_ATOL):
            raise _ReferenceCrash(
                f"scipy.linalg.sqrtm(S_real @ S_fake) has an imaginary diagonal part of {max_imag_diag:.3g} "
                f"(> {IMAG_DIAG_ATOL:g}): the reference calculate_frechet_distance raises 'Imaginary component'")
        covmean = covmean.real
    trace = float(np.trace(covmean))
    if not np.isfinite(trace):
        raise _ReferenceCrash(f"tr sqrtm(S1 S2) is not finite ({trace}) even after the {SQRTM_OFFSET:g} offset")
    return trace, offset_used, max_imag_diag


def frechet_distance(real: Any, fake: Any, *, with_reference: bool = True) -> FrechetResult:
    """The Fréchet distance of two feature sets; never fails on singular covariances (module doc).

    value = |m1 - m2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2): the means in the features' dtype and the
    covariances ``np.cov`` (float64, ddof 1) as E2FGVI's ``calculate_vfid``, the trace of the square root
    by :func:`eigh_trace_sqrt`. The reference's scipy value (or its error), both covariance ranks and the
    exact low-rank value go with it. ``with_reference=False`` skips scipy's sqrtm (minutes at 2048
    dimensions, FID's size); ``reference_error`` then says it was not computed.
    """
    xr = as_feature_matrix(real, "real (ground-truth) features")
    xf = as_feature_matrix(fake, "fake (predicted) features")
    _check_dims(xr, xf)
    diff = np.mean(xr, axis=0) - np.mean(xf, axis=0)  # the features' dtype, as the reference
    s1, s2 = np.cov(xr, rowvar=False), np.cov(xf, rowvar=False)  # float64, ddof = 1
    base = float(diff.dot(diff) + np.trace(s1) + np.trace(s2))
    trace_covmean = eigh_trace_sqrt(s1, s2)
    reference_value, reference_error, offset_used, max_imag_diag = None, None, False, 0.0
    if not with_reference:
        reference_error = "not computed (with_reference=False)"
    else:
        try:
            ref_trace, offset_used, max_imag_diag = _reference_trace_sqrt(s1, s2)
            reference_value = base - 2 * ref_trace
        except _ReferenceCrash as crash:
            reference_error = str(crash)
    return FrechetResult(
        value=base - 2 * trace_covmean, exact_lowrank=frechet_distance_lowrank(xr, xf), n_real=int(xr.shape[0]),
        n_fake=int(xf.shape[0]), dim=int(xr.shape[1]), rank_real=covariance_rank(xr), rank_fake=covariance_rank(xf),
        sq_mean_diff=float(diff.dot(diff)), trace_real=float(np.trace(s1)), trace_fake=float(np.trace(s2)),
        trace_covmean=trace_covmean, trace_covmean_exact=lowrank_trace_sqrt(xr, xf),
        reference_value=reference_value, reference_error=reference_error, sqrtm_offset_used=bool(offset_used),
        max_abs_imag_diag=max_imag_diag)


def frechet_distance_reference(real: Any, fake: Any) -> float:
    """E2FGVI ``calculate_vfid(real, fake)`` exactly: the scipy-sqrtm formula, for comparisons only.

    Raises ``TriptychError`` where the reference raises 'Imaginary component' (or would return a
    non-finite number), giving the ranks and the value of :func:`frechet_distance` instead.
    """
    result = frechet_distance(real, fake)
    if result.reference_value is None:
        raise TriptychError(
            f"Fréchet distance: {result.reference_error}. The covariances are singular: ranks {result.rank_real} "
            f"and {result.rank_fake} from {result.n_real} and {result.n_fake} videos in {result.dim} dimensions. "
            f"triptych.metrics.frechet.frechet_distance gives {result.value!r} (symmetric eigen-decomposition; "
            f"exact low-rank value {result.exact_lowrank!r})",
            fix="use frechet_distance (what triptych's metrics report), or score more videos")
    return result.reference_value
