"""The exercise in Azure ML with SDK v1: auth, compute, dataset, AutoML, ACI deployment, pipelines.

Importing this package or its modules imports no ``azureml`` code; each function that talks to
Azure imports the SDK when it runs. ``cloud.rest``, ``cloud.settings``, ``cloud.plan`` and
``cloud.errors`` work without the SDK installed.
"""
