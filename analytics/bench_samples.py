"""How fast and how lean ``report`` is on a large samples file.

For each line count, writes a synthetic ``samples.ndjson`` shaped like the
engine's (``userflux_analytics.synth``: five endpoints, 290,000 lines a
second), puts it into a copy of the recorded ``closed`` run, and runs
``python -m userflux_analytics report`` on it in a child process; prints
the wall time and the child's peak RSS.

    .venv/bin/python bench_samples.py 10M 50M 100M
    .venv/bin/python bench_samples.py 10M --analytics /tmp/old/analytics   # another checkout, same files

Needs free disk of about 66 bytes a line (100M lines: 6.6 GB) under
``--dir`` (default: the system's temporary directory). ``--keep`` keeps the
generated files there to be reused by the next run.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from userflux_analytics import synth  # noqa: E402

FIXTURE = HERE / "tests" / "data" / "closed"


def count(text: str) -> int:
    t = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("lines", nargs="*", default=["10M"], help="line counts, e.g. 10M 50M 100M")
    p.add_argument("--analytics", default=str(HERE), help="the analytics checkout to run (default: this one)")
    p.add_argument("--dir", default=tempfile.gettempdir(), help="where the samples files are written")
    p.add_argument("--keep", action="store_true", help="keep the samples files for the next run")
    args = p.parse_args()
    # `-m` finds the package in the working directory first, then PYTHONPATH: both are the checkout to run
    args.analytics = str(Path(args.analytics).resolve())
    env = dict(os.environ, PYTHONPATH=args.analytics)
    for n in map(count, args.lines):
        samples = Path(args.dir) / f"userflux-bench-samples-{n}.ndjson"
        if not samples.exists():
            t0 = time.perf_counter()
            synth.write(samples, n)
            print(f"wrote {samples} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        run = Path(tempfile.mkdtemp(prefix="userflux-bench-run-", dir=args.dir))
        try:
            for name in ("summary.json", "config.json", "status.json"):
                shutil.copy(FIXTURE / name, run / name)
            link = os.link if _same_fs(samples, run) else os.symlink
            link(samples, run / "samples.ndjson")
            t0 = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, "-m", "userflux_analytics", "report", str(run)],
                env=env, cwd=args.analytics, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS and CPU
            wall = time.perf_counter() - t0
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                sys.exit(f"report exited {child.returncode}")
            cpu = usage.ru_utime + usage.ru_stime
            size = samples.stat().st_size
            print(
                f"{n:>12,} lines ({size / 1e9:.2f} GB): report in {wall:6.1f} s wall, {cpu:6.1f} s CPU, "
                f"peak RSS {usage.ru_maxrss / 1024:,.0f} MB ({n / wall / 1e6:.2f} M lines/s)",
                flush=True,
            )
        finally:
            shutil.rmtree(run, ignore_errors=True)
            if not args.keep:
                samples.unlink(missing_ok=True)


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


if __name__ == "__main__":
    main()
