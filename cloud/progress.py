"""Follow an AutoML run: one line per finished child run with the best score so far, then a leaderboard.

Pure bookkeeping over ``ChildRecord`` values, so tests can feed it records without a workspace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Canceled"})


@dataclass(frozen=True)
class ChildRecord:
    """One AutoML child run: iteration, pipeline (preprocessor and estimator), status and score."""

    run_id: str
    iteration: int
    pipeline: str
    status: str
    score: float | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class ProgressLine:
    """A finished child run as it is reported, with the best primary-metric score up to it."""

    record: ChildRecord
    best: float | None


def _valid(score: float | None) -> bool:
    return score is not None and not math.isnan(score)


class ProgressTracker:
    """Turn repeated snapshots of the child runs into lines for the runs that finished since the last one.

    All of Azure AutoML's classification primary metrics are maximized, so the best score is the
    highest one.
    """

    def __init__(self) -> None:
        self.reported: set[str] = set()
        self.best: ChildRecord | None = None

    def update(self, records: Iterable[ChildRecord]) -> list[ProgressLine]:
        new = sorted(
            (record for record in records if record.finished and record.run_id not in self.reported),
            key=lambda record: record.iteration,
        )
        lines = []
        for record in new:
            self.reported.add(record.run_id)
            if record.status == "Completed" and _valid(record.score):
                if self.best is None or record.score > self.best.score:
                    self.best = record
            lines.append(ProgressLine(record, self.best.score if self.best else None))
        return lines


def format_progress(line: ProgressLine) -> str:
    record = line.record
    score = f"{record.score:.4f}" if _valid(record.score) else "-"
    best = f"{line.best:.4f}" if line.best is not None else "-"
    text = f"{record.iteration:>5}  {record.pipeline[:48]:<48}  {record.status:<9}  {score:>7}  best {best}"
    if record.error:
        text += f"  ({record.error[:120]})"
    return text


PROGRESS_HEADER = f"{'iter':>5}  {'pipeline':<48}  {'status':<9}  {'score':>7}  best so far"


def leaderboard(records: Iterable[ChildRecord], top: int = 10) -> list[ChildRecord]:
    """Return the completed child runs with a score, best first, at most ``top`` of them."""
    scored = [record for record in records if record.status == "Completed" and _valid(record.score)]
    scored.sort(key=lambda record: (-record.score, record.iteration))
    return scored[:top]
