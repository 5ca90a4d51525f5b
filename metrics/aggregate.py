"""Stateful twins of the per-sample metric functions: exact, mergeable sufficient statistics.

The published tables pool samples: E2FGVI's dataset PSNR is the mean of per-frame PSNR over all frames
of all videos (not a mean of per-video means, not PSNR of the pooled MSE); AMT's is ``np.mean`` over
per-triplet values. The statistic of such a mean is (sum, count), so a batch size, a worker count or a
resumed run cannot change the number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from triptych.errors import TriptychError


@dataclass
class SampleMean:
    """Mean of per-sample values over all samples, pooled.

    >>> acc = SampleMean(); acc.update(1.0); acc.update(2.0)
    >>> acc.merge(SampleMean(3.0, 1)).compute()
    2.0
    """

    total: float = 0.0
    count: int = 0
    reduction: str = "mean over all samples (pooled)"

    def update(self, value: float) -> None:
        if math.isnan(value):
            raise TriptychError("a metric produced NaN; it is never recorded",
                                fix="check the inputs of the sample that produced it")
        self.total += value
        self.count += 1

    def merge(self, other: "SampleMean") -> "SampleMean":
        return SampleMean(self.total + other.total, self.count + other.count, self.reduction)

    def compute(self) -> float:
        if self.count == 0:
            raise TriptychError("no samples were scored, so there is no mean", fix="check the inputs")
        return self.total / self.count
