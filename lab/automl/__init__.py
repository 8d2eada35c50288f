"""The local AutoML: guardrails, a time-budgeted search with cross-validation, ensembles.

Public names are re-exported here; the modules behind them are ``settings``, ``search``,
``candidates``, ``featurization``, ``guardrails``, ``ensemble``, ``threshold``, ``metrics``,
``model``, ``runrecord`` and ``report``.
"""

from lab.automl.model import AutoMLModel, StackEnsemble, VotingEnsemble
from lab.automl.search import AutoMLResult, ChildRun, Event, run_automl
from lab.automl.settings import FAMILIES, PRIMARY_METRICS, THRESHOLD_OBJECTIVES, AutoMLSettings

__all__ = [
    "AutoMLModel",
    "AutoMLResult",
    "AutoMLSettings",
    "ChildRun",
    "Event",
    "FAMILIES",
    "PRIMARY_METRICS",
    "StackEnsemble",
    "THRESHOLD_OBJECTIVES",
    "VotingEnsemble",
    "run_automl",
]
