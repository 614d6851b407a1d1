"""Statistics the learning tests share."""

import math
import statistics
from collections.abc import Sequence


def welch_t(better: Sequence[float], worse: Sequence[float]) -> float:
    """Welch's t of mean(better) - mean(worse): the gap in units of its standard error, unequal variances."""
    spread = math.sqrt(statistics.variance(better) / len(better) + statistics.variance(worse) / len(worse))
    return (statistics.mean(better) - statistics.mean(worse)) / max(spread, 1e-9)
