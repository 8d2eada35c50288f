"""Cluster reuse, scale to zero and the cleanup report, with a workspace replaced by plain objects.

``FakeWorkspace`` has the two attributes these functions read from ``azureml.core.Workspace``:
``compute_targets`` and ``webservices`` (dicts by name). What this does not cover: creating a
cluster and deleting a service in Azure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from cloud import cleanup, compute
from cloud.errors import CloudError
from cloud.settings import ComputeSettings


@dataclass
class FakeScale:
    minimum_node_count: int


@dataclass
class FakeStatus:
    current_node_count: int
    scale_settings: FakeScale
    state: str = "Running"


@dataclass
class FakeCluster:
    name: str
    type: str = "AmlCompute"
    vm_size: str = "STANDARD_D2_V2"
    min_nodes: int = 1
    nodes: int = 1
    updates: list = field(default_factory=list)

    def update(self, **kwargs):
        self.updates.append(kwargs)
        self.min_nodes = kwargs.get("min_nodes", self.min_nodes)

    def get_status(self):
        return FakeStatus(self.nodes, FakeScale(self.min_nodes))


@dataclass
class FakeService:
    name: str
    state: str = "Healthy"
    compute_type: str = "ACI"
    deleted: bool = False

    def delete(self):
        self.deleted = True


@dataclass
class FakeWorkspace:
    compute_targets: dict
    webservices: dict = field(default_factory=dict)
    name: str = "ws-lab-test"


def test_existing_cluster_is_reused(sdk):
    cluster = FakeCluster("automl-cluster")
    workspace = FakeWorkspace({"automl-cluster": cluster})
    assert compute.get_or_create_cluster(workspace, ComputeSettings()) is cluster
    assert cluster.updates == []


def test_target_of_other_type_is_rejected(sdk):
    workspace = FakeWorkspace({"automl-cluster": FakeCluster("automl-cluster", type="ComputeInstance")})
    with pytest.raises(CloudError, match="exists but is a ComputeInstance, not an AmlCompute cluster"):
        compute.get_or_create_cluster(workspace, ComputeSettings())


def test_scale_to_zero_sets_min_nodes():
    cluster = FakeCluster("automl-cluster", min_nodes=2)
    message = compute.scale_to_zero(FakeWorkspace({"automl-cluster": cluster}), "automl-cluster")
    assert cluster.updates == [{"min_nodes": 0}]
    assert message.startswith("cluster automl-cluster scaled to min_nodes 0")


def test_scale_to_zero_without_cluster():
    assert compute.scale_to_zero(FakeWorkspace({}), "automl-cluster") == "cluster automl-cluster not found; nothing to scale"


def test_billable_resources_lists_services_and_compute():
    workspace = FakeWorkspace(
        {"automl-cluster": FakeCluster("automl-cluster", min_nodes=0, nodes=2)},
        {"old-service": FakeService("old-service", state="Unhealthy")},
    )
    lines = cleanup.billable_resources(workspace)
    assert lines[0] == "web service old-service (ACI, state Unhealthy): billed while it exists"
    assert lines[1] == "cluster automl-cluster (STANDARD_D2_V2): 2 node(s) allocated, min_nodes 0"
    assert lines[-1] == cleanup.WORKSPACE_COST_NOTE
