"""HdrHistogram V2 ("compressed") histograms, as the engine writes them in
``summary.json`` ``histograms``: base64 of a zlib-deflated V2 encoding.

Only decoding is needed: counts per index, the value each index stands for,
and percentiles computed the way the engine's hdrhistogram crate does, so a
report's numbers match the summary's.
"""

import base64
import math
import struct
import zlib
from dataclasses import dataclass

V2_COOKIE = 0x1C849303 | 0x10
V2_COMPRESSED_COOKIE = 0x1C849304 | 0x10


class HistogramError(ValueError):
    """A histogram string that is not HdrHistogram V2."""


@dataclass
class Histogram:
    significant_digits: int
    lowest: int
    highest: int
    counts: list[int]

    def __post_init__(self) -> None:
        self.unit_magnitude = int(math.floor(math.log2(self.lowest)))
        largest_single_unit = 2 * 10**self.significant_digits
        self.sub_bucket_count_magnitude = int(math.ceil(math.log2(largest_single_unit)))
        self.sub_bucket_half_count_magnitude = self.sub_bucket_count_magnitude - 1
        self.sub_bucket_half_count = 1 << self.sub_bucket_half_count_magnitude
        self.total = sum(self.counts)

    def value_at_index(self, index: int) -> int:
        """The lowest value the count at ``index`` stands for."""
        bucket = (index >> self.sub_bucket_half_count_magnitude) - 1
        sub = (index & (self.sub_bucket_half_count - 1)) + self.sub_bucket_half_count
        if bucket < 0:
            sub -= self.sub_bucket_half_count
            bucket = 0
        return sub << (bucket + self.unit_magnitude)

    def highest_equivalent(self, index: int) -> int:
        """The highest value the count at ``index`` stands for (what percentiles report)."""
        bucket = max((index >> self.sub_bucket_half_count_magnitude) - 1, 0)
        return self.value_at_index(index) + (1 << (bucket + self.unit_magnitude)) - 1

    def value_at_percentile(self, percentile: float) -> int:
        """The value at ``percentile`` (0..100), as hdrhistogram reports it; 0 when empty."""
        if self.total == 0:
            return 0
        q = min(max(percentile / 100.0, 0.0), 1.0)
        wanted = max(1, math.ceil(q * self.total))
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if c and seen >= wanted:
                return self.highest_equivalent(i)
        return self.highest_equivalent(len(self.counts) - 1)

    def spectrum(self):
        """``(percentile, value)`` for every index with counts: the percentile
        spectrum HdrHistogram plots against 1/(1-p)."""
        seen = 0
        for i, c in enumerate(self.counts):
            if c:
                seen += c
                yield 100.0 * seen / self.total, self.highest_equivalent(i)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """LEB128-64b9B: eight 7-bit groups, then one whole byte."""
    value = 0
    for shift in range(0, 56, 7):
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
    value |= buf[pos] << 56
    return value, pos + 1


def decode(text: str) -> Histogram:
    """Decodes the base64 V2 compressed form."""
    try:
        raw = base64.b64decode(text, validate=True)
        cookie, length = struct.unpack(">II", raw[:8])
        if cookie != V2_COMPRESSED_COOKIE:
            raise HistogramError(f"not a V2 compressed histogram (cookie {cookie:#x})")
        inner = zlib.decompress(raw[8 : 8 + length])
        cookie, payload, _offset, digits, lowest, highest, _ratio = struct.unpack(">IIIIQQd", inner[:40])
    except (ValueError, struct.error, zlib.error) as e:
        raise HistogramError(f"cannot decode histogram: {e}") from e
    if cookie != V2_COOKIE:
        raise HistogramError(f"not a V2 histogram (cookie {cookie:#x})")
    counts: list[int] = []
    pos, end = 40, 40 + payload
    while pos < end:
        zz, pos = _varint(inner, pos)
        n = (zz >> 1) ^ -(zz & 1)
        if n < 0:
            counts.extend([0] * -n)
        else:
            counts.append(n)
    return Histogram(significant_digits=digits, lowest=max(lowest, 1), highest=highest, counts=counts)
