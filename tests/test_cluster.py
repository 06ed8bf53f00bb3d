"""A multi-node Ray cluster on one machine (ray.cluster_utils.Cluster, 2 nodes): a run spreads its
subspace actors over both nodes, pins dso2 to the node that offers the ``gridcoord:dso2`` resource, and
gives the same objective as the in-process run.

The cluster runs in a subprocess shared with the node-loss test (``tests/helpers/cluster.py``): the rest of
the suite shares one single-node Ray in this process."""

from __future__ import annotations

from typing import Any


def test_two_node_cluster_run(cluster_scenarios: dict[str, Any]) -> None:
    out = cluster_scenarios["placement"]
    assert out["cluster_nodes"] == 2
    assert len(out["nodes"]) >= 2, out
    assert set(out["placement"]) == {"tso", "dso1", "dso2"}
    assert set(out["placement"].values()) == set(out["nodes"])
    assert out["placement"]["dso2"] == out["worker"]  # pinned by the node's gridcoord:dso2 resource
    assert abs(out["j"] - out["j_ref"]) <= 1e-6 * abs(out["j_ref"]), out
