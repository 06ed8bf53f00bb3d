"""A multi-node Ray cluster on one machine (ray.cluster_utils.Cluster, 2 nodes): a run spreads its
subspace actors over both nodes, pins dso2 to the node that offers the ``gridcoord:dso2`` resource, and
gives the same objective as the in-process run.

Runs in a subprocess: the rest of the suite shares one single-node Ray in this process."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.cases import TINY_CASE

SCRIPT = r'''
import json, sys
from ray.cluster_utils import Cluster
import ray
from orchestrator.results.run import summarize
from orchestrator.runtime.executors import RayExecutor
from orchestrator.strategies import RunOptions, get_strategy
from orchestrator.system.embedded import build_system

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
worker = cluster.add_node(num_cpus=2, resources={"gridcoord:dso2": 1})  # dso2 must run on this node
cluster.wait_for_nodes()
ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
system = build_system(sys.argv[1])
extra = {"admm_max_rounds": 2}
res = get_strategy("admm").run(system, RunOptions(progress=False, ac_check=False, extra={**extra, "executor": "ray"},
                                                  ray_address=cluster.address))
ref = get_strategy("admm").run(system, RunOptions(progress=False, ac_check=False,
                                                  extra={**extra, "executor": "serial"}))
print(json.dumps({"nodes": res.nodes, "placement": res.placement, "worker": worker.node_id,
                  "j": summarize(system.spec, res)["objective_usd"],
                  "j_ref": summarize(system.spec, ref)["objective_usd"],
                  "cluster_nodes": len([n for n in ray.nodes() if n["Alive"]])}))
ray.shutdown()
cluster.shutdown()
'''


def test_two_node_cluster_run() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, TINY_CASE], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["cluster_nodes"] == 2
    assert len(out["nodes"]) >= 2, out
    assert set(out["placement"]) == {"tso", "dso1", "dso2"}
    assert set(out["placement"].values()) == set(out["nodes"])
    assert out["placement"]["dso2"] == out["worker"]  # pinned by the node's gridcoord:dso2 resource
    assert abs(out["j"] - out["j_ref"]) <= 1e-6 * abs(out["j_ref"]), out
