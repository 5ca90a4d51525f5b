"""KID, the kernel Inception distance (Binkowski et al. 2018), next to FID on the same clean features.

KID = the unbiased estimate of MMD^2 with the polynomial kernel k(x, y) = (gamma x.y + coef)^degree,
gamma = 1 / dim, coef = 1, degree = 3 (the defaults of clean-fid, torchmetrics and torch-fidelity), averaged
over ``subsets`` random subsets of ``subset_size`` features drawn without replacement from each set:

    MMD^2_u = [sum_{i!=j} k(x_i, x_j) + sum_{i!=j} k(y_i, y_j)] / (m (m - 1)) - 2 sum_{i,j} k(x_i, y_j) / m^2

Subsets: ``numpy.random.default_rng(seed)``; for each subset, ``rng.choice(n_real, m, replace=False)`` then
``rng.choice(n_fake, m, replace=False)``. ``m = min(subset_size, n_real, n_fake)`` as clean-fid does
(torchmetrics refuses a subset larger than a set instead); the size used, the count, the seed and the
standard deviation over subsets (population, as torchmetrics returns it) are all recorded in extras. All
arithmetic is float64. Features: ``triptych.metrics.fid.inception_features`` (variant ``clean``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from triptych.errors import InputError
from triptych.metrics.fid import FidNetwork, SetResult, fid_network, inception_features
from triptych.metrics.frechet import as_feature_matrix
from triptych.vision.face import ImageLike

SUBSETS = 100
SUBSET_SIZE = 1000
DEGREE = 3
COEF = 1.0


def poly_mmd2(x: np.ndarray, y: np.ndarray, degree: int = DEGREE, gamma: float | None = None,
              coef: float = COEF) -> float:
    """Unbiased MMD^2 of two (m, d) samples with the polynomial kernel, in float64.

    By hand for x = y = I_2 (gamma 1/2): k = 3.375 on the diagonal, 1 off it; within = (2 + 2) / 2 = 2,
    cross = 2 (2 * 3.375 + 2 * 1) / 4 = 4.375 (unbiased: the diagonal is left out of within only).

    >>> poly_mmd2(np.eye(2), np.eye(2))
    -2.375
    """
    x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m = x64.shape[0]
    if m < 2 or y64.shape[0] != m:
        raise InputError(f"KID needs two subsets of equal size >= 2, got {x64.shape[0]} and {y64.shape[0]}")
    g = 1.0 / x64.shape[1] if gamma is None else gamma
    kxx = (x64 @ x64.T * g + coef) ** degree
    kyy = (y64 @ y64.T * g + coef) ** degree
    kxy = (x64 @ y64.T * g + coef) ** degree
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def subset_indices(n_real: int, n_fake: int, subsets: int, size: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (real, fake) row indices of each subset (see the module doc for the draw order)."""
    rng = np.random.default_rng(seed)
    return [(rng.choice(n_real, size, replace=False), rng.choice(n_fake, size, replace=False)) for _ in range(subsets)]


def kid_from_features(real: Any, fake: Any, *, subsets: int = SUBSETS, subset_size: int = SUBSET_SIZE, seed: int = 0,
                      indices: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
                      weights: dict[str, Any] | None = None) -> SetResult:
    """KID of two (n, d) feature matrices: the mean of ``poly_mmd2`` over subsets.

    ``indices`` replaces the seeded draw (a test feeds torchmetrics' own permutations).
    """
    xr = as_feature_matrix(real, "real features")
    xf = as_feature_matrix(fake, "generated features")
    if xr.shape[1] != xf.shape[1]:
        raise InputError(f"feature sets of different dimensions: {xr.shape[1]} and {xf.shape[1]}",
                         fix="extract both sets with the same network")
    if subsets < 1 or subset_size < 2:
        raise InputError(f"KID needs subsets >= 1 and subset_size >= 2 (got {subsets} and {subset_size})")
    size = min(subset_size, xr.shape[0], xf.shape[0])
    drawn = indices is None
    if indices is None:
        indices = subset_indices(xr.shape[0], xf.shape[0], subsets, size, seed)
    values = np.array([poly_mmd2(xr[i], xf[j]) for i, j in indices], dtype=np.float64)
    details = {"subsets": len(values), "subset_size": int(len(indices[0][0])), "subset_size_requested": subset_size,
               "seed": seed if drawn else "given indices", "std": float(values.std()), "degree": DEGREE,
               "gamma": 1.0 / xr.shape[1], "coef": COEF, "n_real": int(xr.shape[0]), "n_fake": int(xf.shape[0])}
    return SetResult(float(values.mean()), int(xf.shape[0]),
                     f"unbiased polynomial-kernel MMD^2, mean over {len(values)} subsets of {details['subset_size']}",
                     weights or {}, details)


def kid_clean(real: Sequence[ImageLike], generated: Sequence[ImageLike], *, subsets: int = SUBSETS,
              subset_size: int = SUBSET_SIZE, seed: int = 0, network: FidNetwork | None = None,
              trunk: Path | None = None) -> SetResult:
    """Metric ``kid``, variant ``clean``: KID between real and generated images on FID ``clean`` features."""
    network = network or fid_network(trunk)
    real_f, fake_f = inception_features(real, network), inception_features(generated, network)
    result = kid_from_features(real_f, fake_f, subsets=subsets, subset_size=subset_size, seed=seed,
                               weights=network.weights)

    def value(r: np.ndarray, f: np.ndarray) -> float:
        return kid_from_features(r, f, subsets=subsets, subset_size=subset_size, seed=seed).value

    return result.with_features(real_f, fake_f, value)
