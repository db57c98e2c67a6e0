"""A Userflux run directory, loaded: ``summary.json`` (required), and
``config.json``, ``status.json`` when present. Every problem is a
``RunDirError`` that names the file and says what is wrong."""

import json
from dataclasses import dataclass
from pathlib import Path

SUMMARY_SCHEMA = "userflux.summary/v1"


class RunDirError(Exception):
    """The directory is not a readable Userflux run."""


@dataclass
class Run:
    path: Path
    summary: dict
    config: dict | None
    status: dict | None

    @property
    def run_id(self) -> str:
        return self.summary.get("run_id", self.path.name)

    @property
    def samples_path(self) -> Path | None:
        p = self.path / "samples.ndjson"
        return p if p.is_file() else None


def _json(path: Path, required: bool) -> dict | None:
    if not path.exists():
        if required:
            raise RunDirError(f"{path}: missing — is {path.parent} a Userflux run directory?")
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RunDirError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); the file is truncated or corrupted"
        ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path}: cannot read: {e}") from e
    if not isinstance(value, dict):
        raise RunDirError(f"{path}: expected a JSON object")
    return value


def load(path: str | Path) -> Run:
    p = Path(path)
    if not p.is_dir():
        raise RunDirError(f"{p}: not a directory")
    summary = _json(p / "summary.json", required=True)
    schema = summary.get("schema")
    if schema != SUMMARY_SCHEMA:
        raise RunDirError(f"{p / 'summary.json'}: unknown schema {schema!r} (this version reads {SUMMARY_SCHEMA!r})")
    for key in ("totals", "endpoints", "timeline"):
        if key not in summary:
            raise RunDirError(f"{p / 'summary.json'}: has no {key!r}; the file is incomplete")
    return Run(path=p, summary=summary, config=_json(p / "config.json", False), status=_json(p / "status.json", False))
