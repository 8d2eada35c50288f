"""Model loading, input validation and request handling for the generated entry scripts.

The inference server hands ``run()`` the top-level values of the JSON body: ``data`` for the v1
payload style (``{"data": [...]}``), ``Inputs`` and ``GlobalParameters`` for v2. The records are
matched to the model's columns by name, never by position, and converted to the training types.
Input that does not fit raises ``ScoringInputError``, which becomes a 400 response naming the
field, the value received (truncated) and the expected form. ``handle_request`` returns a small
``ScoringAnswer`` value, so the whole request handling is testable without HTTP.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType

logger = logging.getLogger(__name__)

MAX_VALUE_CHARS = 60
# Headers through which the entry script passes the front the number of rows scored and the
# error class of a failed request. The front copies them into the request log and removes them
# from the response.
ROWS_HEADER = "x-lab-rows-scored"
ERROR_CLASS_HEADER = "x-lab-error-class"
DEFAULT_MAX_ROWS = 10_000
MAX_ROWS_ENV = "LAB_MAX_ROWS"
# "1" makes a v1 entry script respond with a JSON string that contains JSON, as Azure's v1 AutoML
# scripts do (they return json.dumps(...) and the server encodes it again).
DOUBLE_ENCODED_ENV = "LAB_DOUBLE_ENCODED"
PAYLOAD_STYLES = ("v1", "v2")
V2_METHODS = ("predict", "predict_proba")
# A value no training column contains, used to find out at load time whether the model can
# score a category it has not seen.
_PROBE_CATEGORY = "__lab_unseen_category_probe__"

V1_FORM = '{"data": [record, ...]}'
V2_FORM = '{"Inputs": {"data": [record, ...]}, "GlobalParameters": {"method": "predict"}}'


class ScoringInputError(ValueError):
    """A request whose payload does not fit the model's input schema (HTTP 400)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field

    def to_json(self) -> dict:
        body: dict[str, Any] = {"message": str(self)}
        if self.field is not None:
            body["field"] = self.field
        return body


class ModelLoadError(RuntimeError):
    """The model folder cannot be loaded, or the loaded model fails to score its own sample."""


@dataclass(frozen=True)
class ScoringAnswer:
    """The response of ``run()``: HTTP status, a JSON-serializable body and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def shorten(value: Any) -> str:
    """Return ``value`` as JSON text cut to ``MAX_VALUE_CHARS``, for error messages."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


class RecordsParameterType(PandasParameterType):
    """A ``PandasParameterType`` for swagger that hands ``run()`` the raw records.

    The swagger document is generated from the sample DataFrame exactly as for a
    ``PandasParameterType(sample, orient="records")``. Conversion is left to
    ``ScoringModel.to_frame`` so that each failure gets a 400 naming the field instead of the
    inference server's generic 500.
    """

    def __init__(self, sample_input: pd.DataFrame):
        super().__init__(sample_input, enforce_column_type=False, enforce_shape=False, orient="records")

    def deserialize_input(self, input_data):
        return input_data


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    categories: frozenset[str] | None


class ScoringModel:
    """A registered model folder loaded for scoring (see ``lab.models`` for the layout).

    ``strict_columns`` are the string columns whose encoder raises on a category not seen in
    training; ``non_nullable`` are the columns the model cannot score as null. Both are found by
    ``probe`` on the model's own sample, so the service rejects such values with a 400 instead of
    letting the model fail with a 500.
    """

    def __init__(self, model, columns: list[Column], classes: list[str], max_rows: int = DEFAULT_MAX_ROWS,
                 sample: pd.DataFrame | None = None):
        self.model = model
        self.columns = columns
        self.column_names = [column.name for column in columns]
        self.classes = classes
        self.max_rows = max_rows
        self.sample = sample
        self.strict_columns: frozenset[str] = frozenset()
        self.non_nullable: frozenset[str] = frozenset()

    @classmethod
    def load(cls, model_dir: str | os.PathLike) -> "ScoringModel":
        """Load ``model.pkl``, ``schema.json`` and ``sample.json`` and probe the model on the sample.

        Raises ``ModelLoadError`` when a file is missing or corrupt, or the model cannot score
        its own sample, so that a worker never serves a model that cannot score.
        """
        import joblib

        folder = Path(model_dir)
        try:
            schema = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
            model = joblib.load(folder / "model.pkl")
            sample = load_sample(folder)
        except Exception as exc:  # noqa: BLE001 - any failure here means the folder cannot be served
            raise ModelLoadError(
                f"model folder {folder} cannot be loaded ({exc.__class__.__name__}: {str(exc)[:200]})"
            ) from exc
        columns = [
            Column(c["name"], c["type"], frozenset(c["categories"]) if c.get("categories") is not None else None)
            for c in schema["columns"]
        ]
        classes = [str(label) for label in getattr(model, "classes_", [])]
        max_rows = int(os.environ.get(MAX_ROWS_ENV, DEFAULT_MAX_ROWS))
        scoring_model = cls(model, columns, classes, max_rows, sample)
        scoring_model.probe()
        logger.info(
            "loaded model from %s: %d columns, classes %s, unseen categories rejected for %s, nulls rejected for %s",
            folder, len(columns), classes, sorted(scoring_model.strict_columns) or "none",
            sorted(scoring_model.non_nullable) or "none",
        )
        return scoring_model

    def probe(self) -> None:
        """Score the sample, then one row with each column set to null or to an unseen category.

        Raises ``ModelLoadError`` when the sample itself cannot be scored.
        """
        if self.sample is None or self.sample.empty:
            raise ModelLoadError("the model folder has no sample records to check the model with")
        try:
            frame = self.to_frame(json.loads(self.sample.to_json(orient="records")), max_rows=len(self.sample))
        except ScoringInputError as exc:
            raise ModelLoadError(f"the model's sample.json does not fit its schema.json: {exc}") from exc
        try:
            self.model.predict(frame)
            if self.classes:
                self.model.predict_proba(frame)
        except Exception as exc:  # noqa: BLE001 - the model's own failure, whatever its class
            raise ModelLoadError(
                f"the model cannot score its own sample ({exc.__class__.__name__}: {str(exc)[:200]})"
            ) from exc
        strict, non_nullable = set(), set()
        row = frame.iloc[:1]
        for column in self.columns:
            if column.type == "string" and not self._scores(row.assign(**{column.name: _PROBE_CATEGORY})):
                strict.add(column.name)
            if not self._scores(row.assign(**{column.name: _missing(column)})):
                non_nullable.add(column.name)
        self.strict_columns = frozenset(strict)
        self.non_nullable = frozenset(non_nullable)

    def _scores(self, frame: pd.DataFrame) -> bool:
        try:
            self.model.predict(frame)
        except Exception:  # noqa: BLE001 - any failure means the model cannot take this value
            return False
        return True

    # -- input -------------------------------------------------------------------------------

    def to_frame(self, records: Any, prefix: str = "", max_rows: int | None = None) -> pd.DataFrame:
        """Convert ``data`` records to a DataFrame in training column order and types.

        ``prefix`` is put before ``data`` in field names (``"Inputs."`` for the v2 style), and
        ``max_rows`` replaces the service's row limit. Raises ``ScoringInputError`` for anything
        that is not a non-empty list of objects with exactly the model's columns and values of
        the right type.
        """
        where = f"{prefix}data"
        max_rows = self.max_rows if max_rows is None else max_rows
        if not isinstance(records, list):
            raise ScoringInputError(
                f"'{where}' must be a list of records (objects keyed by column name), got {type(records).__name__} "
                f"{shorten(records)}",
                field=where,
            )
        if not records:
            raise ScoringInputError(f"'{where}' is an empty list; send at least one record", field=where)
        if len(records) > max_rows:
            raise ScoringInputError(
                f"'{where}' has {len(records)} records, more than the limit of {max_rows} per request; "
                "split the batch",
                field=where,
            )
        expected = set(self.column_names)
        values: dict[str, list] = {name: [] for name in self.column_names}
        for index, record in enumerate(records):
            at = f"{where}[{index}]"
            if not isinstance(record, dict):
                raise ScoringInputError(
                    f"{at} must be an object keyed by column name, got {type(record).__name__} "
                    f"{shorten(record)}; positional lists are rejected because their column order is ambiguous",
                    field=at,
                )
            missing = [name for name in self.column_names if name not in record]
            if missing:
                raise ScoringInputError(
                    f"{at} is missing column(s) {', '.join(repr(m) for m in missing[:5])}"
                    f"{' and more' if len(missing) > 5 else ''}; every record needs all {len(expected)} "
                    "columns of the swagger schema (send null for an unknown value)",
                    field=f"{at}.{missing[0]}",
                )
            unknown = [name for name in record if name not in expected]
            if unknown:
                raise ScoringInputError(
                    f"{at} has unknown column(s) {', '.join(shorten(u) for u in unknown[:5])}; "
                    "the model expects only the columns of the swagger schema",
                    field=f"{at}.{unknown[0]}",
                )
            for column in self.columns:
                values[column.name].append(self._convert(column, record[column.name], at))
        # Arrays of the final dtype, so pandas needs no per-column conversion (that took most of
        # the time of a one-record request).
        arrays = {
            column.name: np.array(values[column.name], dtype="float64" if column.type in ("integer", "float") else object)
            for column in self.columns
        }
        return pd.DataFrame(arrays, columns=self.column_names, copy=False)

    def _convert(self, column: Column, value: Any, at: str) -> Any:
        field_name = f"{at}.{column.name}"
        if value is None:
            if column.name in self.non_nullable:
                raise ScoringInputError(
                    f'column "{column.name}" does not accept null in {at}: the model cannot impute it; send a value',
                    field=field_name,
                )
            return _missing(column)
        if column.type == "integer":
            number = _to_integer(value)
            if number is None:
                raise ScoringInputError(
                    f'column "{column.name}" expects an integer, got {shorten(value)} in {at}', field=field_name
                )
            return number
        if column.type == "float":
            number = _to_float(value)
            if number is None:
                raise ScoringInputError(
                    f'column "{column.name}" expects a finite number, got {shorten(value)} in {at}',
                    field=field_name,
                )
            return number
        if column.type == "boolean":
            if isinstance(value, bool):
                return value
            raise ScoringInputError(
                f'column "{column.name}" expects true or false, got {shorten(value)} in {at}', field=field_name
            )
        if not isinstance(value, str):
            raise ScoringInputError(
                f'column "{column.name}" expects a string, got {shorten(value)} in {at}', field=field_name
            )
        if column.name in self.strict_columns and column.categories is not None and value not in column.categories:
            known = sorted(column.categories)
            listed = ", ".join(shorten(c) for c in known[:8]) + (f" and {len(known) - 8} more" if len(known) > 8 else "")
            raise ScoringInputError(
                f'column "{column.name}" got {shorten(value)} in {at}, a category the model has not seen in '
                f"training; expected one of {listed}",
                field=field_name,
            )
        return value

    # -- scoring -----------------------------------------------------------------------------

    def predict(self, frame: pd.DataFrame) -> list:
        return [_plain(label) for label in self.model.predict(frame)]

    def predict_proba(self, frame: pd.DataFrame) -> list[list[float]]:
        """Return one list of class probabilities per row, in the order of ``self.classes``."""
        probabilities = self.model.predict_proba(frame)
        return [[round(float(p), 6) for p in row] for row in probabilities]


def _missing(column: Column) -> Any:
    """Return the missing value the model's featurization expects: NaN for numbers, None otherwise.

    scikit-learn's encoders take None as missing in a column of strings, but fail on a float NaN
    among strings.
    """
    return np.nan if column.type in ("integer", "float") else None


def _to_integer(value: Any) -> int | None:
    """Return ``value`` as an int when that loses nothing (17, 17.0, "17"), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _to_float(value: Any) -> float | None:
    """Return ``value`` as a finite float (numbers and numeric strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _plain(value: Any) -> Any:
    """Turn numpy scalars into JSON-serializable Python values."""
    return value.item() if isinstance(value, np.generic) else value


def load_sample(model_dir: str | os.PathLike) -> pd.DataFrame:
    """Return the model's input sample (``sample.json``) as a DataFrame in training column order."""
    folder = Path(model_dir)
    schema = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
    records = json.loads((folder / "sample.json").read_text(encoding="utf-8"))["data"]
    names = [column["name"] for column in schema["columns"]]
    return pd.DataFrame(records)[names]


# -- request handling ----------------------------------------------------------------------------


def parse_payload(style: str, data: Any = None, inputs: Any = None, global_parameters: Any = None) -> tuple[Any, str, str]:
    """Take the records and the method out of the top-level values of a request body.

    Returns ``(records, method, prefix)``, where ``prefix`` is the path of ``data`` in the body
    for error messages. Raises ``ScoringInputError`` naming the form this service expects when
    the wrapper does not fit ``style``.
    """
    if style == "v1":
        if data is not None:
            return data, "predict", ""
        if inputs is not None:
            raise ScoringInputError(
                f"this service takes the v1 payload {V1_FORM}, but the body has 'Inputs' (the v2 form); "
                "send the records as the top-level 'data' list",
                field="data",
            )
        raise ScoringInputError(f"the body has no 'data' key (or it is null); this service takes {V1_FORM}",
                                field="data")
    if style != "v2":
        raise ValueError(f"unknown payload style {style!r}; expected one of {PAYLOAD_STYLES}")
    if inputs is None:
        if data is not None:
            raise ScoringInputError(
                f"this service takes the v2 payload {V2_FORM}, but the body has a top-level 'data' (the v1 form); "
                "wrap the records in 'Inputs'",
                field="Inputs",
            )
        raise ScoringInputError(f"the body has no 'Inputs' key (or it is null); this service takes {V2_FORM}",
                                field="Inputs")
    if not isinstance(inputs, dict) or "data" not in inputs:
        raise ScoringInputError(
            f"'Inputs' must be an object with a 'data' list, got {shorten(inputs)}; this service takes {V2_FORM}",
            field="Inputs.data",
        )
    if global_parameters is None:
        return inputs["data"], "predict", "Inputs."
    if not isinstance(global_parameters, dict):
        raise ScoringInputError(
            f"'GlobalParameters' must be an object such as {{\"method\": \"predict\"}}, got {shorten(global_parameters)}",
            field="GlobalParameters",
        )
    method = global_parameters.get("method", "predict")
    if method not in V2_METHODS:
        raise ScoringInputError(
            f"'GlobalParameters.method' must be \"predict\" or \"predict_proba\", got {shorten(method)}",
            field="GlobalParameters.method",
        )
    return inputs["data"], method, "Inputs."


def handle_request(
    model: ScoringModel,
    style: str,
    body: dict[str, Any],
    request_id: str,
    double_encoded: bool = False,
) -> ScoringAnswer:
    """Score one request; ``body`` has the top-level keys ``data``, ``Inputs``, ``GlobalParameters``.

    Bad input gives a 400 response. A failure inside the model gives a 500 with a generic message
    and ``request_id``; its traceback goes to the log under that id.
    """
    try:
        records, method, prefix = parse_payload(style, body.get("data"), body.get("Inputs"),
                                                body.get("GlobalParameters"))
        frame = model.to_frame(records, prefix)
    except ScoringInputError as exc:
        return ScoringAnswer(400, exc.to_json(), {ERROR_CLASS_HEADER: type(exc).__name__})
    try:
        predictions = model.predict_proba(frame) if method == "predict_proba" else model.predict(frame)
    except TimeoutError:
        raise  # the inference server's SCORING_TIMEOUT_MS alarm, which it reports as "Scoring timeout after N ms"
    except Exception as exc:  # noqa: BLE001 - a fault in the model, whatever its class, is a 500
        logger.exception("request %s: the model failed to score %d rows", request_id, len(frame))
        message = (
            "An unexpected error occurred in the model while scoring. "
            f"The service log has the details under request id {request_id}."
        )
        return ScoringAnswer(500, {"message": message, "request_id": request_id},
                             {ERROR_CLASS_HEADER: f"ModelError:{exc.__class__.__name__}"})
    result: Any = {"result": predictions} if style == "v1" else {"Results": predictions}
    if double_encoded:
        result = json.dumps(result)
    return ScoringAnswer(200, result, {ROWS_HEADER: str(len(predictions))})


def double_encoded_from_env() -> bool:
    return os.environ.get(DOUBLE_ENCODED_ENV, "0").strip().lower() in ("1", "true", "yes")


def current_request_id() -> str:
    """Return the id of the request being served, the one the front set, from Flask's request context."""
    import flask

    return getattr(flask.g, "request_id", None) or flask.request.headers.get("x-request-id", "unknown")


def current_body_keys() -> dict[str, Any]:
    """Return the top-level keys of the JSON body being served, each mapped to True when not null.

    ``run()`` takes only its schema parameters, so that the swagger document lists nothing else.
    When its own parameter is missing, it reads the other keys here to name a wrong payload
    style. This parses the body a second time, so it is only for that error path.
    """
    import flask

    body = flask.request.get_json(silent=True)
    if not isinstance(body, dict):
        return {}
    return {key: True for key, value in body.items() if value is not None}
