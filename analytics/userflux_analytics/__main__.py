"""``python -m userflux_analytics report RUN_DIR`` and
``python -m userflux_analytics compare RUN_A RUN_B [--out DIR] [--tolerance 5%]``.

Exit codes: 0 ok; 1 ``compare`` flagged a regression; 2 a run directory that
cannot be read (the message names the file)."""

import argparse
import sys
from pathlib import Path

from . import compare, report
from .run import RunDirError, load


def tolerance(text: str) -> float:
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a percentage such as 5%") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must not be negative")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="userflux_analytics", description="Reports of Userflux runs")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="write report.html and PNG charts into a run directory")
    r.add_argument("run_dir")
    r.add_argument("--out", help="write here instead of into the run directory")
    c = sub.add_parser("compare", help="compare two runs or more; exit 1 when a later run regressed from the first")
    c.add_argument("runs", nargs="+", metavar="RUN", help="run directories, the first the baseline")
    c.add_argument("--out", help="directory for compare.html and its charts (default: LAST_RUN/compare-FIRST_RUN)")
    c.add_argument("--tolerance", type=tolerance, default=0.05, help="allowed change before a regression (default 5%%)")
    args = p.parse_args(argv)
    try:
        if args.command == "report":
            path = report.build(load(args.run_dir), Path(args.out) if args.out else None)
            print(f"report: {path}")
            return 0
        if len(args.runs) < 2:
            print("userflux_analytics: compare needs two runs or more", file=sys.stderr)
            return 2
        runs = [load(r) for r in args.runs]
        out = Path(args.out) if args.out else runs[-1].path / f"compare-{runs[0].run_id}"
        results = compare.build_many(runs, out, args.tolerance)
        for result in results:
            for line in compare.describe(result):
                print(line)
        print(f"comparison: {out / 'compare.html'}")
        return 1 if any(r.regressions for r in results) else 0
    except RunDirError as e:
        print(f"userflux_analytics: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
