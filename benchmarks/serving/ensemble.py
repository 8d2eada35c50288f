"""One-record scoring time of a VotingEnsemble with and without the shared featurization.

The ensemble has the first five pipelines of the AutoML portfolio (``lab.automl.candidates``):
three LightGBM and one HistGradientBoosting on the ordinal featurizer, and LogisticRegression on
the one-hot featurizer. As ``lab train`` refits an ensemble's members, each is fitted on the same
rows, the 2,000-row training sample that the other serving benchmarks use.

``shared`` is the ensemble's own ``predict_proba``, which transforms a record once per distinct
fitted featurizer. ``per_member`` calls every member's whole pipeline, as the ensemble did
before. Calls alternate between the two, one BLAS/OpenMP thread, and each figure is the median
over the calls.

    LAB_DATA_DIR=/path/to/data python benchmarks/serving/ensemble.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WORK_DIR, build_model, machine_description, write_result  # noqa: E402

CALLS = 400
WARMUP_CALLS = 50
MEMBERS = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=WORK_DIR / "ensemble.json")
    args = parser.parse_args()

    import numpy as np
    from threadpoolctl import threadpool_limits

    from lab import data as lab_data
    from lab.automl.candidates import FEATURIZER_OF, build_pipeline, portfolio
    from lab.automl.featurization import prepare_frame, roles_from_schema
    from lab.automl.model import AutoMLModel, VotingEnsemble, featurization_groups

    build_model()  # writes the training sample on first use
    frame = lab_data.read_csv(WORK_DIR / "sample.csv")
    schema = {"label": "y", "columns": [column.to_json() for column in lab_data.infer_schema(frame, "y")]}
    roles = roles_from_schema(schema)
    classes, codes = np.unique(frame["y"], return_inverse=True)
    X = frame.drop(columns=["y"])
    specs = portfolio(tuple(FEATURIZER_OF))[:MEMBERS]
    with threadpool_limits(1):
        members = [build_pipeline(spec, roles, len(classes), 0, 1).fit(prepare_frame(X, roles), codes)
                   for spec in specs]
        weights = [1] * len(members)
        model = AutoMLModel(VotingEnsemble(members, weights), roles, list(classes), algorithm="VotingEnsemble")
        record = X.iloc[:1]

        def shared():
            return model.predict_proba(record)

        def per_member():
            prepared = prepare_frame(record, roles)
            stacked = np.stack([member.predict_proba(prepared) for member in members])
            return np.tensordot(np.asarray(weights, dtype=float) / len(weights), stacked, axes=1)

        np.testing.assert_array_equal(shared(), per_member())
        timings: dict[str, list[float]] = {"shared": [], "per_member": []}
        for _ in range(WARMUP_CALLS):
            shared()
            per_member()
        for _ in range(CALLS):
            for name, call in (("shared", shared), ("per_member", per_member)):
                started = time.perf_counter()
                call()
                timings[name].append((time.perf_counter() - started) * 1000)

    result = {
        "members": [spec.describe() for spec in specs],
        "featurization_groups": featurization_groups(members),
        "calls": CALLS,
        "p50_ms": {name: round(statistics.median(values), 3) for name, values in timings.items()},
        "machine": machine_description(),
    }
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
