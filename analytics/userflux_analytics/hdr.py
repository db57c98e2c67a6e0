"""HdrHistogram V2 ("compressed") histograms, as the engine writes them in
``summary.json``: decoded by the HdrHistogram project's own Python package
(``hdrhistogram`` on PyPI, module ``hdrh``).

Percentiles are taken under the engine's rule, not the package's: the Rust
crate (like Java's HdrHistogram) reports the value at rank
``ceil(q × count)``, where ``hdrh``'s ``get_value_at_percentile`` rounds the
rank half-up; the two differ by one bucket on some percentiles, and a
report's numbers must equal the summary's.
"""

import math

from hdrh.histogram import HdrHistogram


class HistogramError(ValueError):
    """A histogram string that is not HdrHistogram V2."""


class Histogram:
    """A decoded histogram: its count, percentiles and spectrum (µs)."""

    def __init__(self, h: HdrHistogram) -> None:
        self._h = h
        self.total = h.get_total_count()

    def _recorded(self):
        """(highest equivalent value, count so far) for each recorded bucket, ascending."""
        for it in self._h.get_recorded_iterator():
            yield self._h.get_highest_equivalent_value(it.value_iterated_to), it.total_count_to_this_value

    def value_at_percentile(self, percentile: float) -> int:
        """The value at ``percentile`` (0..100) as the engine reports it; 0 when empty."""
        if self.total == 0:
            return 0
        q = min(max(percentile / 100.0, 0.0), 1.0)
        wanted = max(1, math.ceil(q * self.total))
        last = 0
        for value, seen in self._recorded():
            last = value
            if seen >= wanted:
                return value
        return last

    def spectrum(self):
        """``(percentile, value)`` for every recorded bucket: the percentile
        spectrum HdrHistogram plots against 1/(1-p)."""
        for value, seen in self._recorded():
            yield 100.0 * seen / self.total, value


def decode(text: str) -> Histogram:
    """Decodes the base64 V2 compressed form."""
    try:
        h = HdrHistogram.decode(text)
    except Exception as e:  # the package raises whatever its decoder meets
        raise HistogramError(f"cannot decode histogram: {e}") from e
    if h is None:
        raise HistogramError("cannot decode histogram")
    return Histogram(h)
