"""The AutoML compute cluster: get or create it, and scale it to zero nodes."""

from __future__ import annotations

import logging

from cloud.errors import CloudError, cloud_error, with_retry
from cloud.plan import PlannedChange
from cloud.settings import ComputeSettings

logger = logging.getLogger(__name__)

CLUSTER_COST = "billed per node-hour for each allocated node; with min_nodes 0 an idle cluster costs nothing"


def plan_cluster(settings: ComputeSettings) -> PlannedChange:
    return PlannedChange(
        "create or reuse",
        "AmlCompute cluster",
        settings.name,
        {
            "vm_size": settings.vm_size,
            "vm_priority": settings.vm_priority,
            "min_nodes": settings.min_nodes,
            "max_nodes": settings.max_nodes,
            "idle_seconds_before_scaledown": settings.idle_seconds_before_scaledown,
        },
        CLUSTER_COST,
    )


def plan_scale_to_zero(name: str) -> PlannedChange:
    return PlannedChange("update", "AmlCompute cluster", name, {"min_nodes": 0}, "no node-hours once idle nodes are released")


def provisioning_configuration(settings: ComputeSettings):
    """Build the SDK's ``AmlComputeProvisioningConfiguration`` for ``settings`` (offline)."""
    from azureml.core.compute import AmlCompute

    return AmlCompute.provisioning_configuration(
        vm_size=settings.vm_size,
        vm_priority=settings.vm_priority,
        min_nodes=settings.min_nodes,
        max_nodes=settings.max_nodes,
        idle_seconds_before_scaledown=settings.idle_seconds_before_scaledown,
    )


def find_cluster(workspace, name: str):
    """Return the compute target ``name`` of the workspace, or None when there is none."""
    targets = with_retry(lambda: workspace.compute_targets, "list compute targets")
    return targets.get(name)


def get_or_create_cluster(workspace, settings: ComputeSettings):
    """Return the cluster ``settings.name``, creating it when it does not exist.

    An existing cluster is reused as it is, with a warning when its VM size differs. Raises
    ``CloudError`` for a target of another type with the same name, or when creation fails. A
    cluster whose creation failed is deleted again, and the message states whether that worked.
    """
    from azureml.core.compute import ComputeTarget

    try:
        existing = find_cluster(workspace, settings.name)
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"listing compute targets of workspace {workspace.name}", exc)
    if existing is not None:
        if existing.type != "AmlCompute":
            raise CloudError(
                f"compute target {settings.name!r} exists but is a {existing.type}, not an AmlCompute cluster; "
                "pass another --cluster name"
            )
        size = getattr(existing, "vm_size", None)
        if size and size.lower() != settings.vm_size.lower():
            logger.warning("reusing cluster %s with VM size %s (requested %s)", settings.name, size, settings.vm_size)
        logger.info("reusing cluster %s", settings.name)
        return existing

    logger.info("creating cluster %s (%s, %d to %d nodes)", settings.name, settings.vm_size,
                settings.min_nodes, settings.max_nodes)
    cluster = None
    try:
        cluster = ComputeTarget.create(workspace, settings.name, provisioning_configuration(settings))
        cluster.wait_for_completion(show_output=False)
        if cluster.provisioning_state != "Succeeded":
            errors = getattr(cluster, "provisioning_errors", None) or cluster.provisioning_state
            raise CloudError(f"provisioning state {cluster.provisioning_state}: {errors}")
    except Exception as exc:  # noqa: BLE001
        leftover = _delete_failed_cluster(cluster)
        raise cloud_error(f"creating cluster {settings.name} ({settings.vm_size}) {leftover}", exc)
    return cluster


def _delete_failed_cluster(cluster) -> str:
    """Delete a cluster whose creation failed; return a note on what is left for the message."""
    if cluster is None:
        return "(nothing was created)"
    try:
        cluster.delete()
        return "(the half-created cluster was deleted)"
    except Exception as exc:  # noqa: BLE001
        logger.warning("could not delete half-created cluster %s: %s", cluster.name, exc)
        return f"(the half-created cluster {cluster.name} is left; delete it in Azure ML studio > Compute)"


def scale_to_zero(workspace, name: str) -> str:
    """Set the cluster's minimum to zero nodes; return what was done, or that there is no such cluster."""
    try:
        cluster = find_cluster(workspace, name)
        if cluster is None:
            return f"cluster {name} not found; nothing to scale"
        if cluster.type != "AmlCompute":
            return f"compute target {name} is a {cluster.type}, not a cluster; left unchanged"
        with_retry(lambda: cluster.update(min_nodes=0), f"scale cluster {name}")
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"scaling cluster {name} to zero nodes", exc)
    return f"cluster {name} scaled to min_nodes 0; idle nodes are released after the scale-down delay"
