"""Shared setup of the serving benchmarks: the model folder, the request body, process memory.

The model is the same small real pipeline the service tests use (``tests/conftest.py``): fitted
on a stratified sample of the training CSV found through LAB_DATA_DIR. Nothing here reads the
held-out test file.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
WORK_DIR = REPO / "benchmarks" / ".work" / "serving"


def build_model(work_dir: Path = WORK_DIR) -> Path:
    """Return a model folder, fitting the small model of the service tests on first use."""
    folder = work_dir / "model"
    if (folder / "model.pkl").is_file():
        return folder
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import SAMPLE_ROWS, SEED, build_small_model  # the fixture's own builder
    from sklearn.model_selection import train_test_split

    from lab import data as lab_data

    data_dir = os.environ.get(lab_data.DATA_DIR_ENV)
    if not data_dir:
        raise SystemExit(f"set {lab_data.DATA_DIR_ENV} to the folder with {lab_data.OFFICIAL_FILENAME}")
    frame = lab_data.read_csv(Path(data_dir) / lab_data.OFFICIAL_FILENAME)
    sample, _ = train_test_split(frame, train_size=SAMPLE_ROWS, stratify=frame["y"], random_state=SEED)
    work_dir.mkdir(parents=True, exist_ok=True)
    csv = work_dir / "sample.csv"
    sample.to_csv(csv, index=False)
    return build_small_model(csv, folder)


def one_record(model_dir: Path) -> dict:
    return json.loads((model_dir / "sample.json").read_text(encoding="utf-8"))["data"][0]


def process_tree_sum(pid: int, read: Callable[[int], float]) -> float:
    """Return the sum of ``read(p)`` over ``pid`` and all its descendants, found through /proc.

    A process that exits during the walk (``read`` or its children file raise
    FileNotFoundError) is left out.
    """
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            total += read(current)
            with open(f"/proc/{current}/task/{current}/children", encoding="ascii") as handle:
                pending.extend(int(child) for child in handle.read().split())
        except FileNotFoundError:
            continue
    return total


def rss_bytes(pid: int) -> int:
    """Return the resident memory of ``pid`` and all its descendants, from /proc, in bytes."""

    def read(current: int) -> float:
        with open(f"/proc/{current}/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    return int(process_tree_sum(pid, read))


def machine_description() -> str:
    """Return the architecture, cores, Python version and current 1-minute load average."""
    return (f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}, "
            f"load average at end {os.getloadavg()[0]:.1f}")


def write_result(path: Path, result: dict) -> None:
    """Write ``result`` as indented JSON to ``path`` and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
