"""``report.html`` and the PNG charts of one run: pure functions build the
page's data from the run; the Jinja template in ``templates/`` renders it.
The page embeds its charts, so it opens with no network."""

import base64
import hashlib
import json
import sys
from pathlib import Path

from jinja2 import Environment, PackageLoader

from . import charts, colors, hdr, knee
from . import samples as smp
from . import timeline as tl
from .run import Run

PERCENTILES = ("p50", "p90", "p95", "p99", "p99_9", "max")


def _env() -> Environment:
    env = Environment(loader=PackageLoader("userflux_analytics", "templates"), autoescape=True)
    env.filters["ms"] = lambda v: (
        "–" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.2f}" if v < 10 else f"{v:.1f}")
    )
    env.filters["pct"] = lambda v: f"{100 * v:.2f}%"
    env.filters["num"] = lambda v: f"{v:,.0f}" if isinstance(v, int | float) else str(v)
    env.filters["number"] = number
    env.globals["hms"] = charts.hms
    return env


def number(v: float | None) -> str:
    """A value as it reads best: a count as an integer ("7,592,261", never
    "7592261.000"), else four significant digits."""
    if v is None:
        return "–"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:.4g}"


def decode_histograms(summary: dict, key: str) -> dict[str, hdr.Histogram]:
    out = {}
    for name, text in (summary.get(key) or {}).items():
        try:
            out[name] = hdr.decode(text)
        except hdr.HistogramError:
            continue  # reported as a missing spectrum, not a crash
    return out


def verdict(summary: dict) -> dict:
    """The line read first: thresholds, error rate, achieved vs target."""
    t = summary.get("thresholds") or []
    failed = [x for x in t if not x.get("ok") or x.get("aborted")]
    targets = []
    for name, e in sorted(summary["endpoints"].items()):
        if e.get("target_rps"):
            targets.append({"name": name, "target": e["target_rps"], "achieved": e.get("achieved_rps") or e["rps"]})
    totals = summary["totals"]
    ok = not failed and summary.get("state") != "failed"
    # Without thresholds nothing was asked, so nothing passed: the verdict
    # says how the run ended instead.
    word = ("PASSED" if ok else "FAILED") if t else ("FAILED" if summary.get("state") == "failed" else "FINISHED")
    return {
        "ok": ok,
        "word": word,
        "class": "ok" if t and ok else "bad" if not ok else "neutral",
        "thresholds": f"{len(t) - len(failed)} of {len(t)} thresholds passed" if t else "no thresholds",
        "error_rate": totals.get("error_rate", 0.0),
        "rps": totals.get("rps", 0.0),
        "targets": targets,
        "state": summary.get("state"),
        "stop_reason": summary.get("stop_reason"),
        # requests cut off by the end of the run (error kind `interrupted`)
        "interrupted": summary.get("interrupted"),
    }


def endpoint_rows(summary: dict) -> list[dict]:
    rows = []
    items = sorted(summary["endpoints"].items())
    if len(items) > 1:
        items.append(("total", summary["totals"]))
    for name, e in items:
        lat = e.get("latency_corrected_ms") or e.get("latency_ms") or {}
        rows.append(
            {
                "name": name,
                "requests": e["requests"],
                "rps": e["rps"],
                "error_rate": e["error_rate"],
                "latency": [lat.get(p) for p in PERCENTILES],
                "corrected": bool(e.get("latency_corrected_ms")),
                "measured": [(e.get("latency_ms") or {}).get(p) for p in PERCENTILES],
                "status_codes": e.get("status_codes", {}),
                "error_kinds": e.get("error_kinds", {}),
                # gRPC calls per grpc-status name, for an endpoint with grpc
                "grpc_status": e.get("grpc_status", {}),
                "dropped": e.get("dropped", 0),
                "late": e.get("late", 0),
                # HTTP/2 connection events (GOAWAYs, resets by code, retries), for an h2 endpoint
                "h2": e.get("h2"),
            }
        )
    return rows


def slug(name: str) -> str:
    """A file-name-safe form of an endpoint name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def file_names(names, prefix: str = "", suffix: str = ".png") -> dict[str, str]:
    """A file name per name, all different: the slug, with a short hash of
    the name when two slugs collide ("users a/b" and "users a?b"), compared
    without case so no file overwrites another on a case-insensitive disk."""
    names = sorted(set(names))
    seen: dict[str, int] = {}
    for n in names:
        key = slug(n).lower()
        seen[key] = seen.get(key, 0) + 1
    out = {}
    for n in names:
        base = slug(n)
        if seen[base.lower()] > 1:
            base += "-" + hashlib.sha1(n.encode()).hexdigest()[:8]
        out[n] = f"{prefix}{base}{suffix}"
    return out


def server_timing_rows(summary: dict) -> list[dict]:
    """Per endpoint, the measured latency and each Server-Timing metric (ms)."""
    rows = []
    for name, e in sorted(summary["endpoints"].items()):
        metrics = e.get("server_timing") or {}
        if not metrics:
            continue
        lat = e.get("latency_ms") or {}
        rows.append({"name": name, "metric": "measured", "count": e["requests"],
                     **{k: lat.get(k) for k in ("p50", "p90", "p99", "max")}})  # fmt: skip
        for m, v in sorted(metrics.items()):
            rows.append(
                {"name": "", "metric": m, "count": v["count"], **{k: v[k] for k in ("p50", "p90", "p99", "max")}}
            )
        if e.get("server_timing_malformed"):
            rows.append(
                {"name": "", "metric": f"{e['server_timing_malformed']} malformed entries skipped", "count": None}
            )
    return rows


PHASES = (("connect_ms", "connect"), ("tls_handshake_ms", "TLS handshake"), ("waiting_ms", "waiting"))
# An HTTP/2 endpoint's connection timings, under its `h2` object.
H2_PHASES = (("settings_ms", "HTTP/2 SETTINGS"), ("ping_rtt_ms", "HTTP/2 PING RTT"))


def phase_rows(summary: dict) -> list[dict]:
    """Per endpoint (and the total), each phase's p50/p90/p99/max in ms, where measured."""
    rows = []
    for name, e in [*sorted(summary["endpoints"].items()), ("total", summary["totals"])]:
        h2 = e.get("h2") or {}
        for p, label in [(e.get(k), label) for k, label in PHASES] + [(h2.get(k), label) for k, label in H2_PHASES]:
            if p:
                rows.append({"name": name, "phase": label, **{k: p[k] for k in ("p50", "p90", "p99", "max")}})
    return rows


def check_rows(summary: dict) -> list[dict]:
    """Per endpoint and check: passes, fails and the share that passed."""
    rows = []
    for name, e in sorted(summary["endpoints"].items()):
        for check, c in sorted((e.get("checks") or {}).items()):
            judged = c["passes"] + c["fails"]
            rows.append(
                {
                    "endpoint": name,
                    "name": check,
                    "passes": c["passes"],
                    "fails": c["fails"],
                    "rate": c["passes"] / judged if judged else None,
                }
            )
    return rows


def flow_rows(summary: dict) -> list[dict]:
    """Per flow: iterations, failures, rate, duration percentiles and its steps."""
    rows = []
    for name, f in sorted((summary.get("flows") or {}).items()):
        d = f.get("iteration_duration_ms") or {}
        rows.append(
            {
                "name": name,
                "iterations": f["iterations"],
                "failed": f["failed_iterations"],
                "interrupted": f["interrupted_iterations"],
                "rate": f["iterations_per_s"],
                "vus": f["vus"],
                "duration": [d.get(k) for k in ("p50", "p95", "p99", "max")],
                "steps": f["steps"],
            }
        )
    return rows


def sample_rows(stats: smp.SampleStats) -> list[dict]:
    """Per endpoint, from samples.ndjson: sampled requests, failures by kind,
    and the busiest second (or the busiest column of ``stats.step`` seconds)."""
    rows = []
    for name, e in sorted(stats.endpoints.items()):
        per = e.columns[0]
        busiest = int(per.argmax())
        rows.append(
            {
                "name": name,
                "lines": e.lines,
                "failed": e.failed,
                "errors": e.errors,
                "busiest": int(per[busiest]),
                "busiest_hms": charts.hms(stats.origin + busiest * stats.step),
                "busiest_at": stats.origin + busiest * stats.step,
                "step": stats.step,
            }
        )
    return rows


def covered_seconds(timeline: list[dict]) -> dict[int, float]:
    """The partial seconds of the timeline: ``{t: covered}``."""
    return {e["t"]: tl.covered(e) for e in timeline if tl.is_partial(e)}


def make_charts(run: Run, sample_stats: smp.SampleStats | None) -> list[tuple[str, str, bytes]]:
    """(title, file name, PNG) for every chart the run has data for."""
    s = run.summary
    timeline = s["timeline"]
    pal = colors.of_runs(s)
    ep = pal["endpoints"]
    made = [
        ("Throughput", "throughput.png", charts.throughput(timeline, colors=ep)),
        ("Latency percentiles over time", "latency.png", charts.latency_over_time(timeline)),
        (
            "Latency by percentile",
            "spectrum.png",
            charts.spectrum(
                decode_histograms(s, "histograms"), decode_histograms(s, "histograms_corrected"), colors=ep
            ),
        ),
        ("Latency per endpoint", "endpoints.png", charts.endpoints(s["endpoints"], ep)),
        ("Errors over time", "errors.png", charts.errors_over_time(timeline, ep)),
        ("Flow iterations", "flows.png", charts.flows(timeline, pal["flows"])),
        ("Workers per endpoint", "workers.png", charts.workers(timeline, s.get("scaling_events") or [], ep)),
        (
            "Sampled requests",
            "samples.png",
            charts.samples_heatmap(sample_stats, covered_seconds(timeline)) if sample_stats else None,
        ),
    ]
    # One chart per endpoint whose server said where its time went (Server-Timing).
    files = file_names(s["endpoints"], prefix="time-")
    for name, e in sorted(s["endpoints"].items()):
        png = charts.where_time_goes(name, e, timeline, pal["metrics"])
        made.append((f"Where the time goes: {name}", files[name], png))
    return [(t, f, png) for t, f, png in made if png]


# The capacity search's chart (issue #32).
KNEE_FILE = "knee.png"


def search_section(run: Run, out: Path) -> dict | None:
    """The "Capacity search" section when the run is a search: its data
    for the template, with the knee chart written to ``knee.png``."""
    search = run.summary.get("search")
    if not search:
        return None
    data, curve = knee.section(search, run.summary, run.config, run.path)
    png = charts.knee(curve)
    if png:
        (out / KNEE_FILE).write_bytes(png)
        data["chart"] = {"file": KNEE_FILE, "b64": base64.b64encode(png).decode(), "title": "The knee"}
    else:
        data["chart"] = None
    return data


def build(run: Run, out_dir: Path | None = None) -> Path:
    """Writes report.html and the PNGs into ``out_dir`` (default: the run directory)."""
    out = out_dir or run.path
    out.mkdir(parents=True, exist_ok=True)
    sample_stats, samples_error = None, None
    if run.samples_path:
        try:
            sample_stats = smp.read(run.samples_path)
        except smp.SamplesError as e:
            # the report goes on without the samples; it says why
            samples_error = str(e)
            print(f"userflux_analytics: warning: {e}", file=sys.stderr)
    figures = make_charts(run, sample_stats)
    for _, name, png in figures:
        (out / name).write_bytes(png)
    search = search_section(run, out)
    html = (
        _env()
        .get_template("report.html.j2")
        .render(
            s=run.summary,
            search=search,
            verdict=verdict(run.summary),
            rows=endpoint_rows(run.summary),
            timing_rows=server_timing_rows(run.summary),
            flow_rows=flow_rows(run.summary),
            check_rows=check_rows(run.summary),
            phase_rows=phase_rows(run.summary),
            colors=colors.of_runs(run.summary),
            any_corrected=any(e.get("latency_corrected_ms") for e in run.summary["endpoints"].values()),
            charts=[{"title": t, "file": f, "b64": base64.b64encode(p).decode()} for t, f, p in figures],
            events=run.summary.get("scaling_events") or [],
            partials=tl.partial_points(run.summary["timeline"]),
            thresholds=run.summary.get("thresholds") or [],
            samples=sample_stats,
            sample_rows=sample_rows(sample_stats) if sample_stats else [],
            samples_error=samples_error,
            config=json.dumps(run.config, indent=2) if run.config else None,
        )
    )
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
