"""Synthetic ``samples.ndjson`` for benchmarks and tests: lines shaped like
the engine's (``engine/src/measure/samples.rs``), written fast from a small
template.

A template of :data:`TEMPLATE` lines (five endpoints, two of them a flow's
steps; lognormal latencies; a 503 ``status`` error every 97th line and a
``timeout`` every 1999th) is repeated with ``t`` advancing at ``rate`` lines
a second, as the engine writes them on one core at full rate. Everything is
a pure function of the line index, so a test can count what it should find.
"""

import random
from pathlib import Path

TEMPLATE = 4096
ENDPOINTS = ("users", "orders", "search", "checkout.login", "checkout.pay")
STATUS_EVERY, TIMEOUT_EVERY = 97, 1999


def _template() -> list[str]:
    rnd = random.Random(7)
    out = []
    for i in range(TEMPLATE):
        ep = ENDPOINTS[i % len(ENDPOINTS)]
        lat = int(rnd.lognormvariate(7.2, 0.6))
        if i % STATUS_EVERY == 0:
            out.append(f'"ep":"{ep}","st":503,"err":"status","lat":{lat},"b":120,"w":{i % 2}}}\n')
        elif i % TIMEOUT_EVERY == 0:
            out.append(f'"ep":"{ep}","err":"timeout","lat":{lat * 50},"b":0,"w":{i % 2}}}\n')
        else:
            out.append(f'"ep":"{ep}","st":200,"lat":{lat},"b":{400 + i % 300},"w":{i % 2}}}\n')
    return out


def expected(n: int) -> dict:
    """What a reader must find in the first ``n`` lines: per endpoint, lines
    and errors by kind."""
    per: dict[str, dict] = {ep: {"lines": 0, "status": 0, "timeout": 0} for ep in ENDPOINTS}
    full, rest = divmod(n, TEMPLATE)
    for i in range(TEMPLATE):
        k = full + (1 if i < rest else 0)
        e = per[ENDPOINTS[i % len(ENDPOINTS)]]
        e["lines"] += k
        if i % STATUS_EVERY == 0:
            e["status"] += k
        elif i % TIMEOUT_EVERY == 0:
            e["timeout"] += k
    return per


def write(path: Path, n: int, rate: int = 290_000) -> int:
    """Writes ``n`` lines to ``path``; returns the file's size in bytes."""
    tmpl = _template()
    step = 1_000_000 / rate
    with open(path, "w", encoding="ascii") as f:
        done = 0
        while done < n:
            m = min(TEMPLATE, n - done)
            f.write("".join(f'{{"t":{int((done + i) * step)},{tmpl[i]}' for i in range(m)))
            done += m
    return Path(path).stat().st_size
