"""A capacity search in a report (issue #32): its trials as table rows and
the latency–throughput curve (the knee) they draw, as data.

``summary.json``'s ``search`` lists every trial (the engine's
``run/search.rs``: ``SearchSummary``, ``Trial``); each trial is also a run
directory of its own (``trials/NN-RATE``). These functions are pure but
for reading a trial's own summary when the SLO is on a percentile the
trial list does not carry (p95, p99.9); ``charts.knee`` draws the curve.

What the curve shows, and why:

- x is the rate each trial achieved (a VU search: its VU count), y one
  latency percentile on a log scale — the SLO's when a threshold is on
  ``http_req_duration``'s ``p(N)``, so the SLO line is comparable with the
  points; else p99.
- Two series: corrected (from when each send was due: what an open-model
  trial is judged on) and measured (from the actual send). A VU search is
  closed-model: measured latency only (its trials' corrected is the same).
- The points are joined in the order of the rate (VUs) the trials aimed
  at, so a target that sends less when overloaded shows the curve bending
  back rather than a line drawn across it.
- A trial that dropped sends (every connection busy: ``generator_limit``)
  is a point apart, not joined: it did not run at the rate it aimed at.
- The bracket is shaded only when the confirmation did not contradict it.
- The warm-up is not drawn: it runs cold and is not judged. A trial
  without a response (no latency) is not drawn either; both are named."""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

# A threshold on the latency of every request (not one endpoint's, not a
# subset's): the only kind the totals on the curve can be held against.
DURATION = "http_req_duration"
# `p(99)<50`, `p( 99.9 ) <= 300`, `med<20` (k6's grammar, as the engine reads it)
_EXPR = re.compile(r"^\s*(?:p\(\s*(?P<p>\d+(?:\.\d+)?)\s*\)|(?P<med>med))\s*(?P<op><=|<)\s*(?P<limit>[\d.eE+-]+)\s*$")
# The percentiles a trial records, and those its run directory's summary has.
TRIAL_KEYS = {50.0: "p50", 90.0: "p90", 99.0: "p99"}
SUMMARY_KEYS = {50.0: "p50", 75.0: "p75", 90.0: "p90", 95.0: "p95", 99.0: "p99", 99.9: "p99_9"}
# Verdicts that judged the SLO (the warm-up did not).
JUDGED = ("pass", "fail", "noisy", "confirmed", "not_confirmed")
VERDICT_WORDS = {
    "pass": "pass",
    "fail": "fail",
    "noisy": "noisy",
    "warmup": "warm-up",
    "confirmed": "confirmed",
    "not_confirmed": "NOT confirmed",
}


@dataclass(frozen=True)
class Slo:
    """A latency threshold on a percentile of every request, in ms."""

    percentile: float
    limit: float
    expression: str


def thresholds(summary: dict, config: dict | None) -> list[tuple[str, str]]:
    """(metric key, expression) of every threshold: the summary's judged
    ones, else the config's (``"KEY": ["EXPR", {"threshold": "EXPR"}]``)."""
    judged = [(t["metric"], t["expression"]) for t in summary.get("thresholds") or [] if "expression" in t]
    if judged:
        return judged
    out = []
    for key, specs in ((config or {}).get("thresholds") or {}).items():
        for spec in specs if isinstance(specs, list) else [specs]:
            expr = spec.get("threshold") if isinstance(spec, dict) else spec
            if isinstance(expr, str):
                out.append((key, expr))
    return out


def parse_slo(metric: str, expression: str) -> Slo | None:
    """The SLO a threshold sets on the curve's latency, or ``None`` when it
    is not an upper bound on a percentile of every request's latency."""
    if metric.strip() != DURATION:
        return None
    m = _EXPR.match(expression)
    if not m:
        return None
    try:
        limit = float(m["limit"])
    except ValueError:
        return None
    return Slo(50.0 if m["med"] else float(m["p"]), limit, expression.strip())


def slos(pairs: list[tuple[str, str]]) -> tuple[list[Slo], list[str]]:
    """The latency SLOs that can be drawn, and the other latency thresholds
    (``METRIC: EXPRESSION``) that cannot: one endpoint's, ``avg``, a lower
    bound."""
    drawn, other = [], []
    for metric, expr in pairs:
        slo = parse_slo(metric, expr)
        if slo:
            drawn.append(slo)
        elif metric.startswith(DURATION):
            other.append(f"{metric}: {expr}")
    return drawn, other


def percentile_name(p: float) -> str:
    """``99.0`` → "p99", ``99.9`` → "p99.9"."""
    return f"p{p:g}"


@dataclass
class Point:
    """One judged trial on the curve."""

    n: str  # its number, as in trials/NN-RATE and the table
    target: float  # the rate (a VU search: the VUs) it aimed at
    x: float
    corrected: float | None
    measured: float | None
    verdict: str
    generator_limit: bool = False

    @property
    def apart(self) -> bool:
        """Drawn apart from the line: a trial that dropped sends did not
        run at the rate it aimed at, and its latency includes the wait
        for a free connection, so it is no point of the curve."""
        return self.generator_limit


@dataclass
class Curve:
    """The data ``charts.knee`` draws."""

    over: str  # "rate" or "vus"
    xlabel: str
    percentile: float
    points: list[Point]
    slos: list[Slo]  # the lines drawn: on ``percentile``
    bracket: tuple[float, float] | None  # [highest pass, lowest fail], both found
    notes: list[str] = field(default_factory=list)  # what is not drawn, and why

    @property
    def name(self) -> str:
        return percentile_name(self.percentile)

    @property
    def judged_on(self) -> str:
        """The series the verdicts were given on: corrected when there is one."""
        return "corrected" if any(p.corrected is not None for p in self.points) else "measured"

    def series(self, kind: str, apart: bool = False) -> tuple[list[float], list[float]]:
        """(x, y) of ``kind`` ("corrected" or "measured") in drawing order,
        trials without that latency left out: the line's points, or with
        ``apart`` the points drawn apart from it (trials that dropped
        sends)."""
        pts = [(p.x, getattr(p, kind)) for p in self.points if getattr(p, kind) is not None and p.apart == apart]
        return [x for x, _ in pts], [y for _, y in pts]


def trial_number(t: dict) -> str:
    """The number of ``trials/03-400``: "03"."""
    return Path(t.get("run", "")).name.split("-", 1)[0] or "?"


def _from_trial_dir(run_dir: Path, t: dict, p: float) -> tuple[float | None, float | None] | None:
    """(corrected, measured) percentile ``p`` from the trial's own summary,
    or ``None`` when it cannot be read."""
    try:
        s = json.loads((run_dir / t["run"] / "summary.json").read_text(encoding="utf-8"))
        totals = s["totals"]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    key = SUMMARY_KEYS[p]
    return ((totals.get("latency_corrected_ms") or {}).get(key), (totals.get("latency_ms") or {}).get(key))


def curve(search: dict, slo_list: list[Slo], run_dir: Path | None = None, flows: bool = False) -> Curve:
    """The knee's data from a summary's ``search``. The percentile drawn is
    the highest one the SLOs are on (the tail is what breaks first), p99
    without one; ``run_dir`` is read for a percentile the trial list does
    not carry."""
    notes = []
    wanted = max((s.percentile for s in slo_list), default=99.0)
    percentile = wanted
    if wanted not in TRIAL_KEYS and (wanted not in SUMMARY_KEYS or run_dir is None):
        percentile = 99.0
        notes.append(
            f"The SLO is on {percentile_name(wanted)}, which the trials do not record: "
            "p99 is drawn, and the SLO line is not."
        )
    over = search.get("over", "rate")
    points = []
    trials = sorted(
        enumerate(search.get("trials") or []),
        key=lambda it: ((it[1].get("vus") or 0) if over == "vus" else it[1]["rate"], it[0]),
    )
    for _, t in trials:
        n = trial_number(t)
        if t["verdict"] not in JUDGED:
            notes.append(f"Trial {n} (the warm-up) is not drawn: it runs cold and is not judged.")
            continue
        if percentile in TRIAL_KEYS:
            key = TRIAL_KEYS[percentile]
            corrected, measured = t.get(f"{key}_corrected_ms"), t.get(f"{key}_ms")
        else:
            read = _from_trial_dir(run_dir, t, percentile)
            if read is None:
                notes.append(f"Trial {n} is not drawn: {t.get('run')}/summary.json cannot be read.")
                continue
            corrected, measured = read
        if over == "vus":
            corrected = None  # closed model: no schedule to be late on (the engine writes the measured)
        if corrected is None and measured is None:
            notes.append(f"Trial {n} is not drawn: it had no response, so no latency.")
            continue
        x = float(t["vus"]) if over == "vus" and t.get("vus") is not None else t["achieved"]
        target = float(t["vus"]) if over == "vus" and t.get("vus") is not None else t["rate"]
        points.append(Point(n, target, x, corrected, measured, t["verdict"], bool(t.get("generator_limit"))))
    lo, hi = (search.get("bracket") or [None, None])[:2]
    bracket = (lo, hi) if lo is not None and hi is not None else None
    if bracket and any(t["verdict"] == "not_confirmed" for t in search.get("trials") or []):
        # the trials' bracket is contradicted: the capacity is below its lower end
        notes.append(
            f"The trials' bracket [{lo:,.4g}, {hi:,.4g}] is not shaded: the confirmation at "
            f"{lo:,.4g} did not hold, so the capacity is below it."
        )
        bracket = None
    if over == "vus":
        xlabel = "VUs (closed model)"
    else:
        xlabel = "achieved rate (requests/s; flows: iterations/s)" if flows else "achieved rate (requests/s)"
    return Curve(
        over=over,
        xlabel=xlabel,
        percentile=percentile,
        points=points,
        slos=[s for s in slo_list if s.percentile == percentile],
        bracket=bracket,
        notes=notes,
    )


def unit(search: dict) -> str:
    return "VUs" if search.get("over") == "vus" else "req/s"


def trial_rows(search: dict) -> list[dict]:
    """The trials as the page's table shows them, in the order they ran."""
    rows = []
    for t in search.get("trials") or []:
        v = t["verdict"]
        rows.append(
            {
                "n": trial_number(t),
                "run": t.get("run", ""),
                "target": t.get("vus") if search.get("over") == "vus" else t["rate"],
                "achieved": t["achieved"],
                "measured": [t.get(f"p{p}_ms") for p in (50, 90, 99)],
                "corrected": [t.get(f"p{p}_corrected_ms") for p in (50, 90, 99)],
                "error_rate": t.get("error_rate", 0.0),
                "dropped": t.get("dropped", 0),
                "verdict": v,
                "word": VERDICT_WORDS.get(v, v),
                "why": t.get("why"),
                "generator_limit": bool(t.get("generator_limit")),
                "kind": "warm-up" if v == "warmup" else "confirmation" if v in ("confirmed", "not_confirmed") else "",
                "ok": v in ("pass", "confirmed"),
            }
        )
    return rows


def page_trial(search: dict) -> dict | None:
    """The trial whose summary the rest of the page shows: the confirmation
    run when there was one, else the last trial (the engine writes it so)."""
    trials = search.get("trials") or []
    confirmations = [t for t in trials if t["verdict"] in ("confirmed", "not_confirmed")]
    return (confirmations or trials or [None])[-1]


def section(search: dict, summary: dict, config: dict | None, run_dir: Path | None) -> tuple[dict, Curve]:
    """The page's "Capacity search" section (the template's data) and the
    curve its chart is drawn from."""
    drawn, other = slos(thresholds(summary, config))
    c = curve(search, drawn, run_dir, flows=bool(summary.get("flows")))
    if other:
        c.notes.append("Latency thresholds not drawn (the curve is of every request): " + "; ".join(other) + ".")
    extra = [s.expression for s in drawn if s not in c.slos]
    if extra:
        c.notes.append(
            f"Also judged, not drawn on this {c.name} chart (a trial can fail on it below the line): "
            + "; ".join(extra)
            + "."
        )
    page = page_trial(search)
    rows = trial_rows(search)
    found = search.get("rate") is not None and all(r["verdict"] != "not_confirmed" for r in rows)
    return (
        {
            "over": search.get("over", "rate"),
            "unit": unit(search),
            "outcome": search.get("outcome", ""),
            "found": found,
            "rate": search.get("rate"),
            "bracket": search.get("bracket") or [None, None],
            "rows": rows,
            "page_trial": {
                "n": trial_number(page),
                "run": page.get("run"),
                "confirmation": page["verdict"] in ("confirmed", "not_confirmed"),
            }
            if page
            else None,
            "notes": c.notes,
            "generator_limited": [r["n"] for r in rows if r["generator_limit"]],
        },
        c,
    )
