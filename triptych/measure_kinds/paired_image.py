"""Full-reference image metrics: one value per (prediction, ground truth) pair, pooled mean."""

from __future__ import annotations

from typing import Any, Callable

from triptych.errors import InputError
from triptych.media import Pair, check_same_size, pair_paths, read_prediction, read_rgb
from triptych.threads import ordered_map

OPTIONS: frozenset[str] = frozenset()


def run(m: Any, score: Callable[..., float]) -> None:
    """Each pair read once and scored, ``m.threads`` pairs at a time (``triptych.threads.ordered_map``);
    the values are taken in the pairs' order, so the threads change no number and no row order."""
    pairs = pair_paths(m.inputs.pred, m.inputs.gt)
    params = m.params

    def value_of(pair: Pair) -> float:
        gt = read_rgb(pair.gt)
        pred = read_prediction(pair.pred)
        check_same_size(pred, gt, pair)
        try:
            return float(score(pred, gt, **params))
        except InputError as exc:  # a metric's own refusal (e.g. a frame smaller than the window): name the files
            raise InputError(f"{pair.pred} (ground truth {pair.gt}): {exc.message}", fix=exc.fix) from exc

    values = ordered_map(value_of, pairs, m.threads)
    for pair in m.track(pairs, lambda p: p.sample_id):
        value = next(values)
        m.aggregate.update(value)
        m.per_sample.append((pair.sample_id, value))
