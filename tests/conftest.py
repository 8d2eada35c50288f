"""Shared fixtures: the real data through LAB_DATA_DIR, small samples of it, and a small real model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from lab import data as lab_data
from lab.workspace import Workspace

SEED = 0
SAMPLE_ROWS = 2_000


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder with the training file: LAB_DATA_DIR, or the cache that `lab run` downloads into.

    Tests never download: without either, the tests that need the real data skip.
    """
    value = os.environ.get(lab_data.DATA_DIR_ENV)
    if value:
        folder = Path(value)
        if not (folder / lab_data.OFFICIAL_FILENAME).is_file():
            pytest.skip(f"{folder / lab_data.OFFICIAL_FILENAME} not found ({lab_data.DATA_DIR_ENV}={value})")
        return folder
    cached = lab_data.cache_dir() / lab_data.OFFICIAL_FILENAME
    if cached.is_file() and lab_data.sha256_of(cached) == lab_data.OFFICIAL_SHA256:
        return cached.parent
    pytest.skip(
        f"no training data: set {lab_data.DATA_DIR_ENV} to a folder with {lab_data.OFFICIAL_FILENAME}, "
        "or run `lab data` once to download it into the cache"
    )


@pytest.fixture(scope="session")
def train_frame(data_dir: Path) -> pd.DataFrame:
    return lab_data.read_csv(data_dir / lab_data.OFFICIAL_FILENAME)


@pytest.fixture(scope="session")
def sample_csv(train_frame: pd.DataFrame, tmp_path_factory) -> Path:
    """A stratified sample of the training file, small enough to train on in seconds."""
    from sklearn.model_selection import train_test_split

    sample, _ = train_test_split(
        train_frame, train_size=SAMPLE_ROWS, stratify=train_frame["y"], random_state=SEED
    )
    path = tmp_path_factory.mktemp("data") / "bankmarketing_sample.csv"
    sample.to_csv(path, index=False)
    return path


def build_small_model(sample_csv: Path, folder: Path) -> Path:
    """Fit a real scikit-learn pipeline on ``sample_csv`` and write it as a registered-model folder.

    Service tests use it so that they do not depend on the AutoML search; it follows the same
    model contract (DataFrame in by column name, "yes"/"no" out).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    from lab.models import write_model_files

    frame = lab_data.read_csv(sample_csv)
    schema = lab_data.infer_schema(frame, "y")
    categorical = [column.name for column in schema if column.type == "string"]
    numeric = [column.name for column in schema if column.type != "string"]
    features = ColumnTransformer([
        ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categorical),
        ("numeric", SimpleImputer(strategy="median"), numeric),
    ])
    model = Pipeline([("features", features), ("classifier", HistGradientBoostingClassifier(random_state=SEED))])
    X = frame.drop(columns=["y"])
    model.fit(X, frame["y"])
    folder.mkdir(parents=True, exist_ok=True)
    records = json.loads(X.head(5).to_json(orient="records"))
    write_model_files(folder, model, {"label": "y", "columns": [c.to_json() for c in schema]}, records)
    return folder


@pytest.fixture(scope="session")
def small_model_dir(sample_csv: Path, tmp_path_factory) -> Path:
    return build_small_model(sample_csv, tmp_path_factory.mktemp("model"))


LOG_WAIT_S = 10.0


def wait_for_request_records(path: Path, request_id: str, timeout_s: float = LOG_WAIT_S) -> list[dict]:
    """Return the request-log records of ``request_id``, polling the log for up to ``timeout_s``.

    The front writes each record before it sends the response, so the records are normally there
    at the first read. test_service_faults.py checks that order without this helper.
    """
    import time

    from lab.service import read_request_log

    deadline = time.monotonic() + timeout_s
    while True:
        records = [record for record in read_request_log(path) if record["request_id"] == request_id]
        if records or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


@pytest.fixture()
def wait_for_records():
    """The ``wait_for_request_records`` helper, as a fixture so test modules need no import path."""
    return wait_for_request_records


def make_tiny_workspace(tmp_path: Path) -> Workspace:
    """Return a workspace with dataset ``tiny``: 30 rows, two features, a ``y`` label of both classes."""
    csv = tmp_path / "tiny.csv"
    rows = ["age,job,y"] + [
        f"{20 + i},{'admin' if i % 2 else 'technician'},{'yes' if i % 3 == 0 else 'no'}" for i in range(30)
    ]
    csv.write_text("\n".join(rows) + "\n")
    workspace = Workspace(tmp_path / "ws")
    lab_data.register_dataset(workspace, csv, name="tiny")
    return workspace


@pytest.fixture()
def tiny_workspace(tmp_path: Path) -> Workspace:
    """A fresh workspace with the 30-row dataset ``tiny`` registered."""
    return make_tiny_workspace(tmp_path)
