"""AutoML progress lines, best-so-far and the leaderboard (cloud.progress)."""

from __future__ import annotations

import math

from cloud.progress import ChildRecord, ProgressTracker, format_progress, leaderboard


def record(iteration, status="Completed", score=None, pipeline="MaxAbsScaler LightGBM", error=None):
    return ChildRecord(f"AutoML_1_{iteration}", iteration, pipeline, status, score, error)


def test_tracker_reports_each_finished_child_once():
    tracker = ProgressTracker()
    first = tracker.update([record(0, score=0.91), record(1, status="Running")])
    second = tracker.update([record(0, score=0.91), record(1, score=0.94), record(2, status="Running")])
    assert [line.record.iteration for line in first] == [0]
    assert [line.record.iteration for line in second] == [1]


def test_tracker_keeps_best_so_far():
    tracker = ProgressTracker()
    lines = tracker.update([record(2, score=0.93), record(0, score=0.91), record(1, score=0.89)])
    assert [line.record.iteration for line in lines] == [0, 1, 2]
    assert [line.best for line in lines] == [0.91, 0.91, 0.93]
    assert tracker.best.iteration == 2


def test_tracker_ignores_failed_and_nan_scores_for_best():
    tracker = ProgressTracker()
    lines = tracker.update(
        [record(0, status="Failed", error="MemoryError"), record(1, score=math.nan), record(2, score=0.9)]
    )
    assert [line.best for line in lines] == [None, None, 0.9]


def test_format_progress_shows_failure_cause():
    text = format_progress(ProgressTracker().update([record(3, status="Failed", error="UserError: bad column")])[0])
    assert text.split()[0] == "3"
    assert "Failed" in text
    assert "(UserError: bad column)" in text


def test_leaderboard_orders_completed_runs_by_score():
    records = [
        record(0, score=0.91),
        record(1, score=0.95, pipeline="VotingEnsemble"),
        record(2, status="Failed"),
        record(3, score=0.95, pipeline="StackEnsemble"),
        record(4, status="Running"),
    ]
    board = leaderboard(records, top=3)
    assert [entry.iteration for entry in board] == [1, 3, 0]
