"""Request handling of the entry scripts without HTTP: ``handle_request`` on real fitted models.

The strict model one-hot encodes with ``handle_unknown="error"`` and has no imputer, so it cannot
score an unseen category or a null; the service must find that out at load time and respond with 400.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lab import data as lab_data
from local_scoring.entry import (
    ERROR_CLASS_HEADER,
    ROWS_HEADER,
    ModelLoadError,
    ScoringModel,
    handle_request,
)

SEED = 0
REQUEST_ID = "req-entry-0001"


def build_strict_model(sample_csv: Path, folder: Path) -> Path:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from lab.models import write_model_files

    frame = lab_data.read_csv(sample_csv)
    schema = lab_data.infer_schema(frame, "y")
    categorical = [column.name for column in schema if column.type == "string"]
    numeric = [column.name for column in schema if column.type != "string"]
    features = ColumnTransformer([
        ("categorical", OneHotEncoder(handle_unknown="error"), categorical),
        ("numeric", StandardScaler(), numeric),
    ])
    model = Pipeline([("features", features), ("classifier", LogisticRegression(max_iter=500, random_state=SEED))])
    X = frame.drop(columns=["y"])
    model.fit(X, frame["y"])
    folder.mkdir(parents=True, exist_ok=True)
    records = json.loads(X.head(5).to_json(orient="records"))
    write_model_files(folder, model, {"label": "y", "columns": [c.to_json() for c in schema]}, records)
    return folder


@pytest.fixture(scope="module")
def tolerant(small_model_dir) -> ScoringModel:
    return ScoringModel.load(small_model_dir)


@pytest.fixture(scope="module")
def strict(sample_csv, tmp_path_factory) -> ScoringModel:
    return ScoringModel.load(build_strict_model(sample_csv, tmp_path_factory.mktemp("strict")))


def sample_record(model: ScoringModel) -> dict:
    return json.loads(model.sample.head(1).to_json(orient="records"))[0]


def test_probe_finds_strict_and_non_nullable_columns(strict):
    strings = {column.name for column in strict.columns if column.type == "string"}
    assert strict.strict_columns == strings
    assert strict.non_nullable == set(strict.column_names)


def test_probe_finds_tolerant_model(tolerant):
    assert tolerant.strict_columns == frozenset()
    assert tolerant.non_nullable == frozenset()


def test_unseen_category_is_400_for_strict_model(strict):
    record = {**sample_record(strict), "job": "astronaut"}
    answer = handle_request(strict, "v1", {"data": [record]}, REQUEST_ID)
    assert answer.status == 400
    assert answer.body["field"] == "data[0].job"
    assert answer.body["message"].startswith(
        'column "job" got "astronaut" in data[0], a category the model has not seen in training; '
        'expected one of "admin.", "blue-collar",'
    )
    assert answer.headers == {ERROR_CLASS_HEADER: "ScoringInputError"}


def test_unseen_category_scores_for_tolerant_model(tolerant):
    record = {**sample_record(tolerant), "job": "astronaut"}
    answer = handle_request(tolerant, "v1", {"data": [record]}, REQUEST_ID)
    assert answer.status == 200
    assert len(answer.body["result"]) == 1


def test_null_is_400_for_non_nullable_column(strict):
    record = {**sample_record(strict), "age": None}
    answer = handle_request(strict, "v1", {"data": [record]}, REQUEST_ID)
    assert answer.status == 400
    assert answer.body == {
        "message": 'column "age" does not accept null in data[0]: the model cannot impute it; send a value',
        "field": "data[0].age",
    }


def test_null_is_imputed_for_tolerant_model(tolerant):
    record = {**sample_record(tolerant), "age": None, "euribor3m": None}
    frame = tolerant.to_frame([record])
    assert np.isnan(frame.loc[0, "age"])
    answer = handle_request(tolerant, "v1", {"data": [record]}, REQUEST_ID)
    assert answer.status == 200


def test_v1_answer_and_rows_header(tolerant):
    records = json.loads(tolerant.sample.to_json(orient="records"))
    answer = handle_request(tolerant, "v1", {"data": records}, REQUEST_ID)
    assert answer.status == 200
    assert answer.body == {"result": [str(label) for label in tolerant.model.predict(tolerant.sample)]}
    assert answer.headers == {ROWS_HEADER: str(len(records))}


def test_v1_double_encoded_answer_is_a_string(tolerant):
    answer = handle_request(tolerant, "v1", {"data": [sample_record(tolerant)]}, REQUEST_ID, double_encoded=True)
    assert isinstance(answer.body, str)
    assert json.loads(answer.body) == {"result": tolerant.predict(tolerant.sample.head(1))}


def test_v2_predict_proba_in_class_order(tolerant):
    body = {"Inputs": {"data": [sample_record(tolerant)]}, "GlobalParameters": {"method": "predict_proba"}}
    answer = handle_request(tolerant, "v2", body, REQUEST_ID)
    expected = tolerant.model.predict_proba(tolerant.sample.head(1))[0]
    assert answer.status == 200
    assert len(answer.body["Results"][0]) == len(tolerant.classes)
    assert answer.body["Results"][0] == pytest.approx(list(expected), abs=1e-6)


def test_v2_without_global_parameters_predicts(tolerant):
    answer = handle_request(tolerant, "v2", {"Inputs": {"data": [sample_record(tolerant)]}}, REQUEST_ID)
    assert answer.status == 200
    assert answer.body == {"Results": tolerant.predict(tolerant.sample.head(1))}


def test_v2_unknown_method_is_400(tolerant):
    body = {"Inputs": {"data": [sample_record(tolerant)]}, "GlobalParameters": {"method": "transform"}}
    answer = handle_request(tolerant, "v2", body, REQUEST_ID)
    assert answer.status == 400
    assert answer.body == {
        "message": "'GlobalParameters.method' must be \"predict\" or \"predict_proba\", got \"transform\"",
        "field": "GlobalParameters.method",
    }


@pytest.mark.parametrize("value, expected", [("17", 17.0), (17.0, 17.0), (" 42 ", 42.0)])
def test_integer_column_takes_lossless_forms(tolerant, value, expected):
    frame = tolerant.to_frame([{**sample_record(tolerant), "age": value}])
    assert frame.loc[0, "age"] == expected


@pytest.mark.parametrize("value", [17.5, True, "1e3", "NaN", [17], {"v": 17}])
def test_integer_column_rejects_lossy_forms(tolerant, value):
    answer = handle_request(tolerant, "v1", {"data": [{**sample_record(tolerant), "age": value}]}, REQUEST_ID)
    assert answer.status == 400
    assert answer.body["field"] == "data[0].age"
    assert answer.body["message"].startswith('column "age" expects an integer, got ')


@pytest.mark.parametrize("value", ["inf", float("nan"), 1e400, "x", False])
def test_float_column_rejects_non_finite(tolerant, value):
    answer = handle_request(tolerant, "v1", {"data": [{**sample_record(tolerant), "euribor3m": value}]}, REQUEST_ID)
    assert answer.status == 400
    assert answer.body["field"] == "data[0].euribor3m"


def test_model_fault_is_500_with_request_id(tolerant, caplog):
    class Broken:
        classes_ = tolerant.model.classes_

        def predict(self, X):
            raise RuntimeError("boom inside the model")

    broken = ScoringModel(Broken(), tolerant.columns, tolerant.classes, sample=tolerant.sample)
    with caplog.at_level("ERROR", logger="local_scoring.entry"):
        answer = handle_request(broken, "v1", {"data": [sample_record(tolerant)]}, REQUEST_ID)
    assert answer.status == 500
    assert answer.body == {
        "message": "An unexpected error occurred in the model while scoring. "
                   f"The service log has the details under request id {REQUEST_ID}.",
        "request_id": REQUEST_ID,
    }
    assert answer.headers == {ERROR_CLASS_HEADER: "ModelError:RuntimeError"}
    assert "boom inside the model" not in json.dumps(answer.body)
    assert REQUEST_ID in caplog.text
    assert "RuntimeError: boom inside the model" in caplog.text


def test_load_rejects_model_that_cannot_score_its_sample(small_model_dir, tmp_path):
    import joblib

    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("schema.json", "sample.json"):
        (folder / name).write_bytes((small_model_dir / name).read_bytes())
    joblib.dump(_Unfitted(), folder / "model.pkl")
    with pytest.raises(ModelLoadError, match="cannot score its own sample"):
        ScoringModel.load(folder)


class _Unfitted:
    """A picklable estimator whose predict always fails, like a model fitted on other columns."""

    classes_ = np.array(["no", "yes"])

    def predict(self, X):
        raise ValueError("columns are missing: {'balance'}")

    def predict_proba(self, X):
        raise ValueError("columns are missing: {'balance'}")


def test_null_in_string_column_scores_for_tolerant_model(tolerant):
    answer = handle_request(tolerant, "v1", {"data": [{**sample_record(tolerant), "job": None}]}, REQUEST_ID)
    assert answer.status == 200
    assert len(answer.body["result"]) == 1


def test_load_with_row_limit_below_sample_size(small_model_dir, monkeypatch):
    monkeypatch.setenv("LAB_MAX_ROWS", "1")
    model = ScoringModel.load(small_model_dir)
    assert model.max_rows == 1
    answer = handle_request(model, "v1", {"data": [sample_record(model)] * 2}, REQUEST_ID)
    assert answer.status == 400
    assert answer.body["field"] == "data"
