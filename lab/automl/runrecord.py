"""The run record: one folder per AutoML run with the parent run and one JSON per child run.

Layout of ``<runs dir>/<run id>/``::

    run.json           settings, dataset, status, stop reason, best child run, leaderboard top
    guardrails.json    the data guardrail results
    leaderboard.json   every completed child run, best first
    children/<child run id>.json   pipeline, parameters, metrics per fold, fit time

Every file is written atomically, so a reader never sees half a file, even after Ctrl-C.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

from lab.workspace import atomic_write_json, read_json, utc_now


def new_run_id() -> str:
    """Return an id like ``AutoML_20261204T201500_1a2b3c``, sortable by start time."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"AutoML_{stamp}_{uuid.uuid4().hex[:6]}"


class RunRecord:
    """Writes the record of one run; with ``folder=None`` it keeps everything in memory only."""

    def __init__(self, folder: Path | None, run_id: str):
        self.folder = folder
        self.run_id = run_id
        self.fields: dict = {"run_id": run_id, "status": "Running", "started_at": utc_now()}

    def update(self, **fields) -> None:
        self.fields.update(fields)
        self._write("run.json", self.fields)

    def write_guardrails(self, report: dict) -> None:
        self._write("guardrails.json", report)

    def write_child(self, child: dict) -> None:
        self._write(f"children/{child['child_run_id']}.json", child)

    def write_leaderboard(self, rows: list[dict]) -> None:
        self._write("leaderboard.json", rows)

    def finish(self, status: str, **fields) -> None:
        self.update(status=status, ended_at=utc_now(), **fields)

    def _write(self, name: str, obj) -> None:
        if self.folder is not None:
            atomic_write_json(self.folder / name, obj)


def update_run(folder: Path, **fields) -> None:
    """Add or replace fields of an existing run.json."""
    atomic_write_json(folder / "run.json", {**read_json(folder / "run.json"), **fields})


def load_run(folder: Path) -> dict:
    """Return run.json of a run folder with its guardrails and leaderboard, where written."""
    out = read_json(folder / "run.json")
    for name in ("guardrails", "leaderboard"):
        path = folder / f"{name}.json"
        if path.is_file():
            out[name] = read_json(path)
    return out
