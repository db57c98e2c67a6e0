"""A capacity search in the report (issue #32): the section at the top, a
row per trial, and the knee chart — tested on the data the chart is drawn
from (``knee.curve``) and on what ``charts.knee`` drew from it, not on
pixels. The run directory is a recorded run with a synthetic ``search``
written into its summary, and trial run directories where one is read."""

import json
import re
from pathlib import Path

import jsonschema
import pytest

from userflux_analytics import charts, knee
from userflux_analytics.__main__ import main

PNG = b"\x89PNG\r\n\x1a\n"
SCHEMAS = Path(__file__).parents[2] / "schemas"
SLO = [{"metric": "http_req_duration", "expression": "p(99)<50", "observed": 41.0, "ok": True, "aborted": False}]


def trial(n: int, rate: float, verdict: str, p99: float | None, **kw) -> dict:
    """A trial as the engine writes it; measured latency a little under the corrected."""
    t = {
        "rate": rate,
        "achieved": kw.pop("achieved", rate),
        "p50_ms": None if p99 is None else p99 / 4 * 0.9,
        "p90_ms": None if p99 is None else p99 / 2 * 0.9,
        "p99_ms": None if p99 is None else p99 * 0.9,
        "p50_corrected_ms": None if p99 is None else p99 / 4,
        "p90_corrected_ms": None if p99 is None else p99 / 2,
        "p99_corrected_ms": p99,
        "error_rate": 0.0,
        "dropped": 0,
        "verdict": verdict,
        "generator_limit": False,
        "run": f"trials/{n:02}-{rate:g}",
    }
    t.update(kw)
    return t


# A rate search: warm-up, doubling 100 → 800 (800 fails), bisection 600
# (fails), 500 (passes twice), 550 (noisy), 525 (generator limit), then the
# confirmation at 500. Trial 09 aims at 525 but sends only 480.
TRIALS = [
    trial(1, 100, "warmup", 9.0),
    trial(2, 100, "pass", 4.0),
    trial(3, 200, "pass", 5.0),
    trial(4, 400, "pass", 8.0),
    trial(5, 800, "fail", 900.0, why="http_req_duration: p(99)<50 (observed 900)"),
    trial(6, 600, "fail", 300.0, why="http_req_duration: p(99)<50 (observed 300)"),
    trial(7, 500, "pass", 30.0),
    trial(8, 550, "noisy", 60.0, why="trials at 550 disagreed"),
    trial(9, 525, "fail", 700.0, achieved=480.0, dropped=45, generator_limit=True, why="45 sends dropped"),
    trial(10, 500, "confirmed", 41.0),
]
SEARCH = {
    "over": "rate",
    "rate": 500.0,
    "bracket": [500.0, 525.0],
    "outcome": "sustains 500 req/s within SLO (p99 41.00 ms at 500, fails at 525: 45 sends dropped)",
    "trials": TRIALS,
}


def search_run(d: Path, search: dict, thresholds: list | None = None, config_thresholds: dict | None = None) -> Path:
    """Makes the recorded run in ``d`` the summary of a search (the
    confirmation's summary with ``search``), with the SLO as its thresholds."""
    s = json.loads((d / "summary.json").read_text())
    s["search"] = search
    s["thresholds"] = SLO if thresholds is None else thresholds
    (d / "summary.json").write_text(json.dumps(s))
    c = json.loads((d / "config.json").read_text())
    c["thresholds"] = config_thresholds if config_thresholds is not None else {"http_req_duration": ["p(99)<50"]}
    (d / "config.json").write_text(json.dumps(c))
    return d


@pytest.fixture
def recorded():
    charts.POINTS = []
    yield charts.POINTS
    charts.POINTS = None


def test_the_report_opens_with_the_search_its_trials_and_the_knee(run_copy, recorded):
    d = search_run(run_copy("open"), SEARCH)
    # the synthetic search is one the engine could write
    schema = json.loads((SCHEMAS / "summary.schema.json").read_text())
    jsonschema.validate(json.loads((d / "summary.json").read_text()), schema)
    assert main(["report", str(d)]) == 0
    html = (d / "report.html").read_text()
    # the section comes first, before the confirmation run's own verdict
    assert html.index("<h2>Capacity search</h2>") < html.index('id="verdict"')
    outcome = re.search(r'id="search-outcome">(.*?)</div>', html, re.S).group(1)
    assert "500 req/s" in outcome and "sustains 500 req/s within SLO" in outcome
    # one row per trial, in the order they ran, the warm-up and the confirmation marked
    table = re.search(r'<table id="search-trials">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r'<tr class="trial (\w+)"><td>(\d+)(.*?)</td>', table)
    assert [(v, n) for v, n, _ in rows] == [(t["verdict"], f"{i + 1:02}") for i, t in enumerate(TRIALS)]
    assert "(warm-up)" in rows[0][2] and "(confirmation)" in rows[-1][2]
    assert "noisy: trials at 550 disagreed" in table and "fail: 45 sends dropped" in table
    assert "<td>480.0</td>" in table, "what trial 09 sent, not what it aimed at"
    assert "Trial(s) 09 dropped sends" in html
    assert "The rest of this page is trial 10 (<code>trials/10-500</code>), the confirmation run." in html
    # the chart: a file, and embedded in the section
    assert (d / "knee.png").read_bytes().startswith(PNG)
    assert re.search(r'<img id="knee" src="data:image/png;base64,', html)
    # what it drew: the judged (corrected) line through the joined trials, by the rate aimed at
    lines = {label: (xs, ys) for title, label, xs, ys in recorded if title.startswith("Capacity search")}
    assert lines["p99 corrected (judged)"] == ([100, 200, 400, 500, 500, 550, 600, 800],
                                               [4.0, 5.0, 8.0, 30.0, 41.0, 60.0, 300.0, 900.0])  # fmt: skip
    assert lines["p99 measured"][0] == lines["p99 corrected (judged)"][0]
    assert lines["pass"] == ([100, 200, 400, 500], [4.0, 5.0, 8.0, 30.0])
    assert lines["fail"] == ([480.0, 600, 800], [700.0, 300.0, 900.0])
    assert lines["noisy (counted as fail)"] == ([550], [60.0])
    assert lines["confirmation: held"] == ([500], [41.0])
    assert lines["sends dropped: not joined"] == ([480.0], [700.0])
    assert lines["SLO p(99)<50"][1] == [50.0, 50.0]


def test_the_curve_is_the_judged_trials_in_the_order_of_the_rate_aimed_at():
    slos, other = knee.slos([(t["metric"], t["expression"]) for t in SLO])
    assert slos == [knee.Slo(99.0, 50.0, "p(99)<50")] and other == []
    c = knee.curve(SEARCH, slos)
    assert c.percentile == 99.0 and c.name == "p99" and c.judged_on == "corrected"
    assert [p.n for p in c.points] == ["02", "03", "04", "07", "10", "09", "08", "06", "05"]
    assert c.series("corrected") == ([100, 200, 400, 500, 500, 550, 600, 800], [4.0, 5.0, 8.0, 30.0, 41.0, 60.0,
                                                                                  300.0, 900.0])  # fmt: skip
    # x is what was achieved; the trial that dropped sends stands apart
    assert c.series("corrected", apart=True) == ([480.0], [700.0])
    assert c.series("measured", apart=True) == ([480.0], [pytest.approx(630.0)])
    assert c.bracket == (500.0, 525.0) and c.slos == slos
    assert c.xlabel == "achieved rate (requests/s)"
    assert c.notes == ["Trial 01 (the warm-up) is not drawn: it runs cold and is not judged."]


@pytest.mark.parametrize(
    "metric, expression, slo",
    [
        ("http_req_duration", "p(99)<50", (99.0, 50.0)),
        ("http_req_duration", " p( 99.9 ) <= 300 ", (99.9, 300.0)),
        ("http_req_duration", "p(95)<1e3", (95.0, 1000.0)),
        ("http_req_duration", "med<20", (50.0, 20.0)),
        ("http_req_duration", "avg<20", None),
        ("http_req_duration", "p(99)>5", None),
        ("http_req_duration{endpoint:users}", "p(99)<50", None),
        ("http_req_failed", "rate<0.01", None),
        ("http_req_duration", "p(99)<fast", None),
    ],
)
def test_only_an_upper_bound_on_a_percentile_of_every_request_is_an_slo_line(metric, expression, slo):
    got = knee.parse_slo(metric, expression)
    assert (got and (got.percentile, got.limit)) == slo if slo else got is None


def test_thresholds_come_from_the_config_when_the_summary_has_none():
    config = {"thresholds": {"http_req_duration": ["p(90)<20", {"threshold": "p(99)<80", "abort_on_fail": True}],
                             "http_req_duration{endpoint:users}": ["p(99)<30"]}}  # fmt: skip
    pairs = knee.thresholds({"thresholds": []}, config)
    drawn, other = knee.slos(pairs)
    assert [s.expression for s in drawn] == ["p(90)<20", "p(99)<80"]
    assert other == ["http_req_duration{endpoint:users}: p(99)<30"]
    # the highest percentile is drawn; the other SLO is named, not drawn on the wrong percentile
    data, c = knee.section(SEARCH, {"thresholds": []}, config, None)
    assert c.name == "p99" and [s.expression for s in c.slos] == ["p(99)<80"]
    assert any("p(90)<20" in n and "not drawn" in n for n in data["notes"])
    assert any("http_req_duration{endpoint:users}: p(99)<30" in n for n in data["notes"])


def test_an_slo_on_p95_is_read_from_the_trials_own_summaries(tmp_path):
    for t in TRIALS:
        if t["verdict"] == "warmup":
            continue
        d = tmp_path / t["run"]
        d.mkdir(parents=True)
        lat = {"latency_ms": {"p95": t["p99_ms"] / 2}, "latency_corrected_ms": {"p95": t["p99_corrected_ms"] / 2}}
        (d / "summary.json").write_text(json.dumps({"totals": lat}))
    (tmp_path / "trials/06-600/summary.json").write_text("{")  # a trial whose summary is cut off
    slos, _ = knee.slos([("http_req_duration", "p(95)<25")])
    c = knee.curve(SEARCH, slos, tmp_path)
    assert c.name == "p95" and c.slos == slos
    xs, ys = c.series("corrected")
    assert xs == [100, 200, 400, 500, 500, 550, 800] and ys == [2.0, 2.5, 4.0, 15.0, 20.5, 30.0, 450.0]
    assert "Trial 06 is not drawn: trials/06-600/summary.json cannot be read." in c.notes


def test_an_slo_on_a_percentile_no_summary_has_draws_p99_and_no_line():
    slos, _ = knee.slos([("http_req_duration", "p(97)<40")])
    c = knee.curve(SEARCH, slos, Path("/nonexistent"))
    assert c.name == "p99" and c.slos == []
    assert any("p97" in n and "SLO line is not" in n for n in c.notes)


def test_a_vu_search_is_drawn_by_vus_on_measured_latency(run_copy, recorded):
    vus = [
        trial(1, 250, "warmup", 17.0, vus=2),
        trial(2, 315, "pass", 10.0, vus=2),
        trial(3, 344, "pass", 20.0, vus=4),
        trial(4, 356, "fail", 70.0, vus=16),
        trial(5, 374, "pass", 31.0, vus=8),
        trial(6, 342, "fail", 82.0, vus=9),
        trial(7, 338, "confirmed", 44.0, vus=8),
    ]
    search = {"over": "vus", "rate": 8.0, "bracket": [8.0, 9.0], "outcome": "sustains 8 VUs within SLO", "trials": vus}
    c = knee.curve(search, [knee.Slo(99.0, 50.0, "p(99)<50")])
    assert c.judged_on == "measured" and c.series("corrected") == ([], [])
    assert c.series("measured")[0] == [2.0, 4.0, 8.0, 8.0, 9.0, 16.0]
    assert c.xlabel == "VUs (closed model)" and c.bracket == (8.0, 9.0)
    d = search_run(run_copy("closed"), search)
    assert main(["report", str(d)]) == 0
    html = (d / "report.html").read_text()
    assert "<strong>8 VUs</strong>" in html and "<th>VUs</th>" in html
    labels = {label for title, label, _, _ in recorded if title == "Capacity search: p99 latency by VUs"}
    assert {"p99 measured (judged)", "pass", "fail", "confirmation: held", "SLO p(99)<50"} <= labels
    assert not any("corrected" in label for label in labels)


def test_a_bracket_the_confirmation_contradicts_is_not_shaded():
    trials = [*TRIALS[:-1], trial(10, 500, "not_confirmed", 95.0, why="http_req_duration: p(99)<50 (observed 95)")]
    search = {**SEARCH, "rate": None, "trials": trials, "outcome": "500 req/s passed its trial but not the …"}
    data, c = knee.section(search, {"thresholds": SLO}, None, None)
    assert c.bracket is None and not data["found"]
    assert any("is not shaded: the confirmation at 500 did not hold" in n for n in c.notes)
    # an end not found is no bracket either
    assert knee.curve({**SEARCH, "bracket": [None, 100.0]}, []).bracket is None


def test_trials_without_a_response_are_named_not_drawn():
    search = {**SEARCH, "trials": [*TRIALS, trial(11, 1000, "fail", None, error_rate=1.0, why="all failed")]}
    c = knee.curve(search, [])
    assert "11" not in [p.n for p in c.points]
    assert "Trial 11 is not drawn: it had no response, so no latency." in c.notes


def test_a_run_that_is_no_search_has_no_search_section(run_copy):
    d = run_copy("open")
    assert main(["report", str(d)]) == 0
    assert "Capacity search" not in (d / "report.html").read_text()
    assert not (d / "knee.png").exists()


def test_a_search_with_no_judged_trial_has_its_section_without_a_chart(run_copy):
    outcome = "the budget ran out: no trial was judged"
    search = {"over": "rate", "rate": None, "bracket": [None, None], "outcome": outcome,
              "trials": [trial(1, 100, "warmup", 9.0)]}  # fmt: skip
    d = search_run(run_copy("open"), search)
    assert main(["report", str(d)]) == 0
    html = (d / "report.html").read_text()
    assert "<strong>NOT FOUND</strong> — the budget ran out: no trial was judged" in html
    assert '<tr class="trial warmup">' in html and 'id="knee"' not in html
    assert not (d / "knee.png").exists()
