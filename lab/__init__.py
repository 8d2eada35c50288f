"""Operationalize a tabular classifier the way Azure Machine Learning does it, locally or in Azure."""

__version__ = "0.1.0"
