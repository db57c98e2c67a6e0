"""Userflux analytics: reports and comparisons of Userflux run directories.

Layout:
- ``run``: loading a run directory (``summary.json``, ``config.json``, ``status.json``)
  with clear errors naming the file.
- ``hdr``: decoding the HdrHistogram V2 histograms the engine writes.
- ``samples``: streaming ``samples.ndjson`` with the engine's reader rule, in bounded memory.
- ``charts``: the figures, as PNG bytes (matplotlib, Agg backend).
- ``report``: ``report.html`` and the PNGs for one run.
- ``compare``: two runs side by side, with regressions flagged.
"""

__version__ = "0.1.0"
