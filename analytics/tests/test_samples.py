"""The samples reader (DuckDB over samples.ndjson) and the engine's crash
rule: real files written here, read back, every line accounted for."""

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from userflux_analytics import samples as smp
from userflux_analytics import synth
from userflux_analytics.__main__ import main

DATA = Path(__file__).parent / "data"


def reference_rule(data: bytes) -> tuple[list[bytes], int]:
    """The engine's `recover` (engine/src/measure/samples.rs), byte by byte:
    a line is complete only when it ends with a newline; a NUL ends a line
    without completing it."""
    lines, incomplete, start = [], 0, 0
    for i, b in enumerate(data):
        if b in (0x0A, 0x00):
            if i > start:
                if b == 0x0A:
                    lines.append(data[start:i])
                else:
                    incomplete += 1
            start = i + 1
    if start < len(data):
        incomplete += 1
    return lines, incomplete


def line(t: int, ep: str = "a", lat: int | None = 900, err: str | None = None) -> bytes:
    d = {"t": t, "ep": ep, "st": 200, "b": 10, "w": 0}
    if lat is not None:
        d["lat"] = lat
    if err:
        d["err"] = err
    return json.dumps(d, separators=(",", ":")).encode()


def test_the_crash_rule_counts_garbage_and_damage_and_never_fails(tmp_path):
    lines = [line(i * 1000, lat=500 + i).decode() for i in range(50)]
    crashed = "\n".join(lines[:20]) + "\n" + '{"t":5,"ep":"a","st"' + "\0" * 300 + "\n".join(lines[20:]) + "\n"
    crashed += "garbage that is not json\n" + '{"t": "x"}\n' + '{"t":9,"ep":"a"' + "\0" * 40
    p = tmp_path / "samples.ndjson"
    p.write_bytes(crashed.encode())
    s = smp.read(p)
    assert s.lines == 50, "exactly the complete lines"
    assert (s.incomplete, s.unparsable) == (2, 2)
    assert s.plotted == 50 and s.path == "repaired"


def test_nul_regions_mid_file_are_repaired_even_when_the_file_ends_well(tmp_path):
    # a worker's unfilled chunk in the middle (the engine killed, then the file squeezed by hand, say)
    body = b"\n".join(line(i * 1000) for i in range(10)) + b"\n"
    data = body + line(5)[:11] + b"\0" * 4096 + body + b"\0" * 100 + line(7) + b"\n"
    p = tmp_path / "samples.ndjson"
    p.write_bytes(data)
    s = smp.read(p)
    want, incomplete = reference_rule(data)
    assert (s.lines, s.incomplete, s.unparsable) == (len(want), incomplete, 0) == (21, 1, 0)
    assert s.path == "repaired"


def test_a_clean_file_is_read_directly_and_garbage_without_nul_is_counted_there(tmp_path):
    p = tmp_path / "samples.ndjson"
    p.write_bytes(line(0) + b"\nnot json\n\n" + line(1_500_000) + b"\n" + b'{"t":3,"ep":"a"}\n')
    s = smp.read(p)
    assert (s.lines, s.incomplete, s.unparsable, s.path) == (2, 0, 2, "direct")
    assert (s.t0, s.t1) == (0, 1) and s.heat.shape == (smp.LAT_BINS, 2)


@pytest.mark.parametrize("seed", range(6))
def test_the_repair_agrees_with_the_engines_rule_at_every_chunk_boundary(tmp_path, monkeypatch, seed):
    rnd = random.Random(seed)
    parts = []
    for i in range(400):
        r = rnd.random()
        if r < 0.05:
            parts.append(b"\0" * rnd.randint(1, 300))  # an unfilled region
        elif r < 0.10:
            parts.append(line(i * 997)[: rnd.randint(1, 30)])  # a line a crash cut off
        else:
            parts.append(line(i * 997, ep=rnd.choice("abc"), lat=rnd.randint(10, 10**7)) + b"\n")
    data = b"".join(parts) + (b"\0" * 64 if seed % 2 else line(1)[:9])
    want, incomplete = reference_rule(data)
    p = tmp_path / "samples.ndjson"
    p.write_bytes(data)
    monkeypatch.setattr(smp, "CHUNK", rnd.choice([1, 7, 64, 333]))
    monkeypatch.setattr(smp, "BATCH", rnd.choice([1, 500, 10_000]))
    s = smp.read(p)
    # every complete line is one of ours or a fragment joined to a line after a NUL-less cut: parse like DuckDB
    parsed = 0
    for w in want:
        try:
            d = json.loads(w)
            parsed += isinstance(d, dict) and "t" in d and "lat" in d
        except ValueError:
            pass
    assert (s.lines, s.incomplete, s.unparsable) == (parsed, incomplete, len(want) - parsed)


def test_an_overlong_line_is_one_unparsable_line_and_reading_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(smp, "LONGEST_LINE", 1000)
    monkeypatch.setattr(smp, "CHUNK", 256)
    p = tmp_path / "samples.ndjson"
    p.write_bytes(line(0) + b"\n" + b"x" * 5000 + b"\n" + line(1) + b"\n" + b"y" * 3000)
    s = smp.read(p)
    assert (s.lines, s.unparsable, s.incomplete) == (2, 1, 1), "the overlong tail never ended: incomplete"
    p.write_bytes(line(0) + b"\n" + b"x" * 5000 + b"\0" + line(1) + b"\n")
    s = smp.read(p)
    assert (s.lines, s.unparsable, s.incomplete) == (2, 0, 1), "an overlong piece a NUL ended is incomplete"


def test_an_interrupted_request_is_counted_but_has_no_latency(tmp_path):
    p = tmp_path / "samples.ndjson"
    p.write_bytes(line(0) + b"\n" + line(5, lat=None, err="interrupted") + b"\n" + line(7, lat=None) + b"\n")
    s = smp.read(p)
    assert (s.lines, s.errors, s.unparsable) == (2, 1, 1)
    assert s.plotted == 1, "only the line with a latency is plotted"
    assert s.endpoints["a"].errors == {"interrupted": 1}


def test_the_query_bins_and_counts_like_python_does(tmp_path):
    n = 30_000
    p = tmp_path / "samples.ndjson"
    synth.write(p, n, rate=1000)
    s = smp.read(p)
    rows = [json.loads(x) for x in p.read_text().splitlines()]
    heat: dict[tuple[int, int], int] = {}
    for r in rows:
        k = (smp.lat_bin(r["lat"]), r["t"] // 1_000_000)
        heat[k] = heat.get(k, 0) + 1
    assert {k: int(s.heat[k[0], k[1] - s.t0]) for k in heat} == heat
    assert s.plotted == n and s.lines == n
    want = synth.expected(n)
    for ep, e in want.items():
        got = s.endpoints[ep]
        assert got.lines == e["lines"]
        assert got.errors == {k: e[k] for k in ("status", "timeout") if e[k]}
        per = [0] * (s.t1 - s.t0 + 1)
        for r in rows:
            if r["ep"] == ep:
                per[r["t"] // 1_000_000 - s.t0] += 1
        assert got.columns[0].tolist() == per


def test_samples_reader_matches_the_engines_count(run_copy):
    d = run_copy("closed")
    s = smp.read(d / "samples.ndjson")
    written = json.loads((d / "summary.json").read_text())["samples"]["written"]
    assert s.lines == written and s.skipped == 0 and s.path == "direct"


def test_an_empty_file_has_no_samples(tmp_path):
    p = tmp_path / "samples.ndjson"
    p.write_bytes(b"")
    s = smp.read(p)
    assert (s.lines, s.skipped, s.plotted) == (0, 0, 0)


def test_a_file_that_cannot_be_read_leaves_the_report_standing_and_says_why(run_copy, monkeypatch, capsys):
    d = run_copy("closed")
    monkeypatch.setattr(smp, "MEMORY_LIMIT", "1KB")  # DuckDB itself fails: out of memory
    assert main(["report", str(d)]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "samples.ndjson: cannot read: Out of Memory" in err
    html = (d / "report.html").read_text()
    assert "samples.ndjson could not be read" in html and "Out of Memory" in html
    assert not (d / "samples.png").exists()


def test_a_large_samples_file_reports_progress_on_stderr(tmp_path, monkeypatch, capsys):
    path = tmp_path / "samples.ndjson"
    synth.write(path, 400_000)
    monkeypatch.setattr(smp, "PROGRESS_FROM", 1)
    monkeypatch.setattr(smp, "PROGRESS_EVERY_S", 0.0)
    s = smp.read(path)
    assert s.lines == 400_000
    err = capsys.readouterr().err
    assert "reading samples.ndjson: " in err and "% (" in err and "done" in err
    # and on the repair path
    with path.open("ab") as f:
        f.write(b'{"t":1')
    monkeypatch.setattr(smp, "CHUNK", 1 << 16)
    assert smp.read(path).incomplete == 1
    err = capsys.readouterr().err
    assert "reading samples.ndjson: " in err and "% (" in err and "done" in err
    # a small file says nothing
    monkeypatch.setattr(smp, "PROGRESS_FROM", 1 << 40)
    smp.read(path)
    assert capsys.readouterr().err == ""


def _report(run: Path) -> int:
    """Runs ``report`` on ``run`` in a child process; returns its peak RSS in bytes."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    child = subprocess.Popen([sys.executable, "-m", "userflux_analytics", "report", str(run)], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return usage.ru_maxrss * 1024


def test_five_million_lines_report_in_bounded_memory(tmp_path):
    """A report over a generated 5,000,000-line samples file (330 MB) in a
    child process: every line counted per endpoint; and the memory does not
    grow with the file: against a 500,000-line file, ten times the lines
    add less than a quarter of the extra bytes to the child's peak RSS."""
    peaks, sizes = {}, {}
    for n in (500_000, 5_000_000):
        run = tmp_path / f"run-{n}"
        shutil.copytree(DATA / "closed", run)
        sizes[n] = synth.write(run / "samples.ndjson", n)
        peaks[n] = _report(run)
        html = (run / "report.html").read_text()
        assert f"{n:,} sampled requests read from samples.ndjson" in html
        want = synth.expected(n)
        failed = sum(e["status"] + e["timeout"] for e in want.values())
        assert f"({failed:,} failed)" in html
        for ep, e in want.items():
            assert f"{ep}</td><td>{e['lines']:,}</td><td>{e['status'] + e['timeout']:,}</td>" in html, ep
        assert (run / "samples.png").read_bytes().startswith(b"\x89PNG")
        (run / "samples.ndjson").unlink()
    grew, more = peaks[5_000_000] - peaks[500_000], sizes[5_000_000] - sizes[500_000]
    said = f"peak RSS {peaks[500_000] >> 20} → {peaks[5_000_000] >> 20} MB for {more >> 20} MB more file"
    assert grew < more / 4, said


def test_a_wild_time_or_a_long_run_is_counted_in_wider_columns_not_more_memory(tmp_path):
    p = tmp_path / "samples.ndjson"
    # a day and a bit of samples, and one line whose `t` is 30 years in
    p.write_bytes(
        b"".join(line(k * 1_000_000, lat=1000 + k) + b"\n" for k in (0, 1, 86_400, 90_000)) + line(10**15) + b"\n"
    )
    s = smp.read(p)
    assert s.lines == 5 and s.t1 == 10**9
    assert s.heat.shape[1] <= smp.MAX_COLUMNS and s.step == -(-(10**9 + 1) // smp.MAX_COLUMNS)
    assert s.plotted == 5 and int(s.endpoints["a"].columns[0].sum()) == 5
    assert s.heat[:, 0].sum() == 4, "the day's four fall in the first wide column"
    p.write_bytes(b"".join(line(k * 1_000_000) + b"\n" for k in range(0, 20_000, 7)))
    s = smp.read(p)
    ks = range(0, 20_000, 7)
    assert (s.t1, s.step) == (ks[-1], 3) and s.heat.shape[1] == ks[-1] // 3 + 1 and s.plotted == len(ks)


def test_a_path_with_glob_characters_reads_that_file_only(tmp_path):
    # DuckDB takes paths as glob patterns: `x[12]` would also read x1 and x2
    d = tmp_path / "runs [old]*"
    d.mkdir()
    (d / "x[12].ndjson").write_bytes(line(0) + b"\n")
    (d / "x1.ndjson").write_bytes((line(0) + b"\n") * 5)
    (d / "x2.ndjson").write_bytes((line(0) + b"\n") * 7)
    s = smp.read(d / "x[12].ndjson")
    assert (s.lines, s.path) == (1, "direct")
