"""The results schema's version and its JSON value convention, without the table libraries (pandas,
pyarrow), so that a command printing one JSON document starts fast."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SCHEMA_VERSION = "1.0"


def json_safe(value: Any) -> Any:
    """inf is written as the string "inf" (docs/conventions.md); numpy scalars and arrays (a metric's extras)
    become plain numbers and lists; a NaN in extras is written as the string "nan", never as bare NaN."""
    if isinstance(value, (np.generic, np.ndarray)):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {(k.item() if isinstance(k, np.generic) else k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
