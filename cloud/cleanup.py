"""Delete the web service, scale the cluster to zero, and list what still costs money."""

from __future__ import annotations

import logging

from cloud.compute import plan_scale_to_zero, scale_to_zero
from cloud.deploy import get_service
from cloud.errors import cloud_error, with_retry
from cloud.plan import PlannedChange

logger = logging.getLogger(__name__)

WORKSPACE_COST_NOTE = (
    "the workspace's storage account, key vault, container registry and Application Insights are billed "
    "by use while they exist; deleting the resource group removes everything"
)


def plan_cleanup(service_name: str, cluster_name: str) -> list[PlannedChange]:
    return [
        PlannedChange("delete", "ACI web service", service_name, {}, "stops the per-second ACI charge"),
        plan_scale_to_zero(cluster_name),
    ]


def delete_service(workspace, name: str) -> str:
    service = get_service(workspace, name)
    if service is None:
        return f"service {name} not found; nothing to delete"
    try:
        with_retry(service.delete, f"delete service {name}")
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"deleting service {name}", exc)
    return f"service {name} deleted"


def billable_resources(workspace) -> list[str]:
    """List web services and compute that can still cost money, one line each."""
    lines = []
    try:
        services = with_retry(lambda: workspace.webservices, "list services")
        computes = with_retry(lambda: workspace.compute_targets, "list compute targets")
    except Exception as exc:  # noqa: BLE001
        raise cloud_error(f"listing the resources of workspace {workspace.name}", exc)
    for name, service in sorted(services.items()):
        lines.append(f"web service {name} ({service.compute_type}, state {service.state}): billed while it exists")
    for name, target in sorted(computes.items()):
        lines.append(_describe_compute(name, target))
    lines.append(WORKSPACE_COST_NOTE)
    return lines


def _describe_compute(name: str, target) -> str:
    if target.type == "AmlCompute":
        status = target.get_status()
        scale = getattr(status, "scale_settings", None)
        minimum = getattr(scale, "minimum_node_count", "?")
        current = getattr(status, "current_node_count", "?")
        return f"cluster {name} ({target.vm_size}): {current} node(s) allocated, min_nodes {minimum}"
    if target.type == "ComputeInstance":
        state = target.get_status().state
        return f"compute instance {name} ({target.vm_size}): {state}; billed while running, stop it in studio"
    return f"compute target {name} ({target.type}): attached or other; check its own billing"


def clean_up(workspace, service_name: str, cluster_name: str) -> list[str]:
    """Delete the service, scale the cluster to zero, and return a report followed by what is left."""
    report = [delete_service(workspace, service_name), scale_to_zero(workspace, cluster_name)]
    report.append("still in the workspace:")
    report.extend(f"  {line}" for line in billable_resources(workspace))
    return report
