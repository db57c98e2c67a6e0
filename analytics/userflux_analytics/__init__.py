"""Userflux analytics: reports and comparisons of Userflux run directories.

Layout:
- ``run``: loading a run directory (``summary.json``, ``config.json``, ``status.json``)
  with clear errors naming the file.
- ``hdr``: decoding the HdrHistogram V2 histograms the engine writes.
- ``samples``: ``samples.ndjson`` read and aggregated by DuckDB in bounded memory, with the
  engine's crash reader rule.
- ``synth``: synthetic samples files for the benchmark and tests.
- ``colors``: one colour per endpoint, flow and Server-Timing metric.
- ``charts``: the figures, as PNG bytes (matplotlib, Agg backend).
- ``report``: ``report.html`` and the PNGs for one run.
- ``compare``: two runs or more side by side, with regressions flagged.
"""

__version__ = "0.1.0"
