"""How fast and how lean the samples reader is on a large file.

Writes N sample lines (default 10 million, about 650 MB) shaped like the
engine's, reads them back with ``userflux_analytics.samples.read``, and
prints the time and the peak RSS. Run: ``.venv/bin/python bench_samples.py [N]``.
"""

import json
import os
import resource
import sys
import tempfile
import time

from userflux_analytics import samples


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "samples.ndjson")
        with open(path, "w") as f:
            batch = []
            for i in range(n):
                batch.append(
                    json.dumps(
                        {"t": i * 60, "ep": "users", "st": 200, "lat": 800 + i % 5000, "b": 512, "w": i % 2},
                        separators=(",", ":"),
                    )
                )
                if len(batch) == 100_000:
                    f.write("\n".join(batch) + "\n")
                    batch = []
            if batch:
                f.write("\n".join(batch) + "\n")
        size = os.path.getsize(path)
        t0 = time.perf_counter()
        s = samples.read(samples.Path(path))
        took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{s.lines:,} lines ({size / 1e6:.0f} MB) read in {took:.1f} s "
        f"({s.lines / took / 1e6:.2f} M lines/s), peak RSS {peak:.0f} MB, skipped {s.skipped}"
    )


if __name__ == "__main__":
    main()
