"""Full-reference image metrics: one value per (prediction, ground truth) pair, pooled mean."""

from __future__ import annotations

from typing import Any, Callable

from triptych.errors import InputError
from triptych.media import check_same_size, pair_paths, read_prediction, read_rgb

OPTIONS: frozenset[str] = frozenset()


def run(m: Any, score: Callable[..., float]) -> None:
    for pair in m.track(pair_paths(m.inputs.pred, m.inputs.gt), lambda p: p.sample_id):
        gt = read_rgb(pair.gt)
        pred = read_prediction(pair.pred)
        check_same_size(pred, gt, pair)
        try:
            value = float(score(pred, gt, **m.params))
        except InputError as exc:  # a metric's own refusal (e.g. a frame smaller than the window): name the files
            raise InputError(f"{pair.pred} (ground truth {pair.gt}): {exc.message}", fix=exc.fix) from exc
        m.aggregate.update(value)
        m.per_sample.append((pair.sample_id, value))
