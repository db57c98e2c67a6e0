"""Reports that never mislead (issue #28): partial seconds marked and per
covered time, a heat map whose tail shows, progress that reaches the end,
memory bounded whatever the time span, one colour rule, unique file names,
missing endpoints named, integers as integers. Tested on the data the
charts are drawn from, not on pixels."""

import copy
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_samples import _report

from userflux_analytics import charts, report, synth
from userflux_analytics import samples as smp
from userflux_analytics import timeline as tl
from userflux_analytics.__main__ import main

DATA = Path(__file__).parent / "data"


def six_second_run(d: Path, covered: float = 0.25) -> dict:
    """Rewrites the run in ``d`` as a 6 s run: seconds 0–5 whole, and second
    6 (the graceful stop's tail) covered ``covered`` s, its rates per that time
    — as the engine writes a partial second."""
    s = json.loads((d / "summary.json").read_text())
    whole = s["timeline"][1]
    timeline = []
    for t in range(6):
        e = copy.deepcopy(whole)
        e["t"] = t
        timeline.append(e)
    tail = copy.deepcopy(whole)
    tail.update(t=6, covered=covered, requests=6, errors=0, p50=19.0, p95=19.0, p99=19.0)
    tail["rps"] = 6 / covered
    for ep in tail["endpoints"].values():
        ep.update(requests=2, errors=0, rps=2 / covered, p50=19.0, p95=19.0, p99=19.0)
    timeline.append(tail)
    s["timeline"] = timeline
    s["duration_s"] = 6 + covered
    (d / "summary.json").write_text(json.dumps(s))
    return s


@pytest.fixture
def recorded():
    charts.RECORD, charts.POINTS = [], []
    yield charts.POINTS
    charts.RECORD, charts.POINTS = None, None


def test_a_partial_last_second_is_marked_and_per_covered_time(run_copy, recorded):
    d = run_copy("closed")
    s = six_second_run(d, covered=0.25)
    # the data the charts are drawn from
    rps = tl.series(s["timeline"], lambda e: e["rps"])
    assert rps.x == [0, 1, 2, 3, 4, 5] and rps.px == [6] and rps.pc == [0.25]
    assert rps.py == [6 / 0.25], "a rate per covered time, not 6 requests as a whole second"
    errors = tl.series(s["timeline"], lambda e: tl.per_second(e, 3))
    assert errors.py == [12.0], "a count in a partial second becomes a rate over what it covered"
    assert main(["report", str(d)]) == 0
    # every time chart joins whole seconds only; the partial one is a point apart
    lines = {(title, label): (xs, ys) for title, label, xs, ys in recorded}
    for title in ("Throughput", "Latency percentiles over time", "Workers per endpoint"):
        joined = [xs for (t, label), (xs, _) in lines.items() if t == title and not label.startswith("_") and xs]
        assert joined and all(6 not in xs for xs in joined), title
        marks = [xs for t, label, xs, _ in recorded if t == title and label == "_partial"]
        assert [6] in marks, title
    legends = {(t, label) for t, label, _, _ in recorded if label.startswith("partial second")}
    assert ("Throughput", "partial second (per covered time)") in legends
    assert ("Latency percentiles over time", "partial second") in legends
    # and the page names it
    html = (d / "report.html").read_text()
    assert 'id="partial-seconds"' in html and "6 s (covered 0.25 s, 6 requests)" in html


def test_the_comparison_marks_partial_seconds_and_tells_runs_by_style_not_colour(run_copy, tmp_path, recorded):
    a = run_copy("closed")
    six_second_run(a)
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp")]) == 0
    drawn = [(t, label) for t, label, xs, _ in recorded if t == "Throughput"]
    assert ("Throughput", "_partial") in drawn
    runs = [(label, color) for title, label, color in charts.RECORD if title == "Throughput"]
    assert {c for label, c in runs if label.startswith(("A ", "B "))} == {"#000000"}, runs


def test_the_heat_map_is_per_second_per_bin_over_the_covered_time_on_a_log_scale():
    stats = smp.SampleStats(t0=0, t1=2, step=1, origin=0)
    stats.heat = np.zeros((smp.LAT_BINS, 3), dtype=np.int64)
    stats.heat[10, :] = [1000, 1000, 100]  # the last second covered a quarter
    stats.heat[60, 1] = 1  # one timeout: the tail
    rates, step, seconds = charts.heat_rates(stats, {2: 0.25})
    assert step == 1 and list(seconds) == [1.0, 1.0, 0.25]
    assert list(rates[10]) == [1000, 1000, 400], "the partial second at its rate, not a dip"
    assert rates[60, 1] == 1
    png = charts.samples_heatmap(stats, {2: 0.25})
    assert png.startswith(b"\x89PNG")


def test_long_runs_have_a_clock_time_axis():
    assert charts.hms(3725) == "1:02:05" and charts.hms(90061) == "1d 01:01:01"
    assert charts._nice_step(6 * 86400) == 86400 and charts._nice_step(60) == 10


def test_the_progress_line_reaches_the_end_of_the_file(tmp_path, monkeypatch, capsys):
    path = tmp_path / "samples.ndjson"
    synth.write(path, 300_000)
    monkeypatch.setattr(smp, "PROGRESS_FROM", 1)
    monkeypatch.setattr(smp, "PROGRESS_EVERY_S", 0.0)
    for damage in (b"", b'{"t":1'):  # read directly, then repaired
        with path.open("ab") as f:
            f.write(damage)
        smp.read(path)
        err = capsys.readouterr().err.splitlines()
        done = next(i for i, line in enumerate(err) if line.endswith("MB)") and "done" in line)
        pcts = [int(m.group(1)) for line in err[:done] if (m := re.search(r": (\d+)% \(", line))]
        assert pcts and pcts[-1] >= 95, err
        assert pcts == sorted(pcts), "never goes back"


def test_six_days_of_samples_stay_under_400_mb(tmp_path):
    """A samples file spanning six days, in a child process: its peak RSS
    stays under 400 MB (grouping on raw seconds took 1,080 MB for 5.8 days)."""
    run = tmp_path / "run"
    shutil.copytree(DATA / "closed", run)
    n = 3_000_000
    synth.write(run / "samples.ndjson", n, rate=n / (6 * 86400))
    peak = _report(run)
    assert peak < 400 << 20, f"peak RSS {peak >> 20} MB"
    html = (run / "report.html").read_text()
    assert f"{n:,} sampled requests read from samples.ndjson" in html
    stats = smp.read(run / "samples.ndjson")
    assert stats.heat.shape[1] <= smp.MAX_COLUMNS and stats.t1 >= 6 * 86400 - 2
    assert stats.plotted == n
    # what the memory follows: grouped by raw second, nearly every line was its own row
    assert stats.groups < n / 4, stats.groups


def test_colliding_endpoint_names_give_two_png_files(run_copy):
    d = run_copy("closed")
    s = json.loads((d / "summary.json").read_text())
    s["endpoints"]["users a/b"] = s["endpoints"].pop("users")
    s["endpoints"]["users a?b"] = s["endpoints"].pop("search")
    (d / "summary.json").write_text(json.dumps(s))
    names = report.file_names(["users a/b", "users a?b", "orders", "Orders"], prefix="time-")
    assert len(set(names.values())) == 4
    assert main(["report", str(d)]) == 0
    pngs = sorted(p.name for p in d.glob("time-users_a_b*.png"))
    assert len(pngs) == 2, pngs
    assert pngs[0] != pngs[1]


def test_a_run_missing_an_endpoint_is_named_in_the_trend(run_copy, tmp_path, capsys):
    a = run_copy("closed")
    b, c = tmp_path / "b", tmp_path / "c"
    shutil.copytree(a, b)
    shutil.copytree(a, c)
    s = json.loads((c / "summary.json").read_text())
    del s["endpoints"]["search"]
    (c / "summary.json").write_text(json.dumps(s))
    main(["compare", str(a), str(b), str(c), "--out", str(tmp_path / "trend")])
    html = (tmp_path / "trend" / "compare.html").read_text()
    assert 'id="missing"' in html and "search — not in run 3" in html
    rows = re.findall(r"<tr><td>.*?search</td><td>rps</td>(.*?)</tr>", html, re.S)
    assert rows and rows[0].count("–") == 1, "run 3's cell is empty, the row is kept"
    main(["compare", str(a), str(c), "--out", str(tmp_path / "two")])
    assert "not in" in capsys.readouterr().out
    assert "in A only: search" in (tmp_path / "two" / "compare.html").read_text()


def test_counts_print_as_integers():
    assert report.number(7592261.0) == "7,592,261"
    assert report.number(0.0123456) == "0.01235"
    assert report.number(None) == "–"
