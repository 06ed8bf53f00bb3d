"""ONE multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``) for the cluster and node-loss
tests, in a subprocess (the rest of the suite shares one single-node Ray in the pytest process). Starting a
cluster costs 10-20 s on 2 cores, so both scenarios run on the same one, in this order:

1. ``node_loss``: head + worker; a CSSO run of ``rounds`` rounds (Ray executor, SPREAD) whose worker node is
   killed without notice while round 2 runs (at the latest before round 3 starts): its actors restart on
   the head, their calls are re-sent.
2. ``placement``: a new worker offering the ``gridcoord:dso2`` resource joins; an ADMM run spreads its actors
   over head and worker, pins dso2 to the worker, and is compared with the same rounds run serially.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import json, sys, threading, time
from ray.cluster_utils import Cluster
import ray
from orchestrator.results.run import summarize
from orchestrator.strategies import RunOptions, get_strategy
from orchestrator.system.embedded import build_system

case, rounds = sys.argv[1], int(sys.argv[2])
# the GCS marks a node dead after health_check_failure_threshold missed checks, period_ms apart (Ray's
# defaults: 5 x 3 s); a node killed without notice is then found in about 3 s instead of 15-20 s
fast_death = {"health_check_period_ms": 1000, "health_check_timeout_ms": 1000, "health_check_failure_threshold": 3}
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "_system_config": fast_death})
worker = cluster.add_node(num_cpus=2)
cluster.wait_for_nodes()
ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
system = build_system(case)
out = {"rounds": rounds}

# 1. node loss
info = {}
removal = []

def alive_nodes():
    return len([n for n in ray.nodes() if n["Alive"]])

def on_round(n, executor):
    if n == 1:
        info["before"] = sorted(set(executor.inner.placement))
        info["worker_actors"] = sum(p == worker.node_id for p in executor.inner.placement)
        def remove():
            time.sleep(0.5)
            cluster.remove_node(worker, allow_graceful=False)
            # "gone" once the GCS has marked the node dead (its missed health checks, about 3 s here): until
            # then an actor process on it may still answer a direct call, and nothing restarts it
            deadline = time.monotonic() + 60.0
            while alive_nodes() > 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            info["removed_round"] = info.get("last_round")
        removal.append(threading.Thread(target=remove, daemon=True))
        removal[0].start()
    elif n == 2:
        # a round 2 shorter than the removal must not end the run before the node is gone: the last round
        # then starts after it, and its calls on the lost node's actors go to their restarts
        removal[0].join()
    info["last_round"] = n

t0 = time.monotonic()
res = get_strategy("csso").run(system, RunOptions(progress=False, ac_check=False, ray_address=cluster.address, extra={
    "csso_max_rounds": rounds, "executor": "ray", "on_round": on_round}))
wall_s = time.monotonic() - t0
# the GCS marks the killed node dead after its missed health checks (about 3 s, fast_death); the actors'
# restart does not wait for that, so the run can end first
deadline = time.monotonic() + 60.0
while alive_nodes() > 1 and time.monotonic() < deadline:
    time.sleep(0.2)
out["node_loss"] = {"placement": res.placement, "worker": worker.node_id, "info": info, "wall_s": wall_s,
                    "j": summarize(system.spec, res)["objective_usd"], "alive": alive_nodes()}

# 2. placement on a new worker that offers gridcoord:dso2
pinned = cluster.add_node(num_cpus=2, resources={"gridcoord:dso2": 1})  # dso2 must run on this node
cluster.wait_for_nodes()
extra = {"admm_max_rounds": 2}
res = get_strategy("admm").run(system, RunOptions(progress=False, ac_check=False, extra={**extra, "executor": "ray"},
                                                  ray_address=cluster.address))
ref = get_strategy("admm").run(system, RunOptions(progress=False, ac_check=False,
                                                  extra={**extra, "executor": "serial"}))
out["placement"] = {"nodes": res.nodes, "placement": res.placement, "worker": pinned.node_id,
                    "j": summarize(system.spec, res)["objective_usd"],
                    "j_ref": summarize(system.spec, ref)["objective_usd"],
                    "cluster_nodes": len([n for n in ray.nodes() if n["Alive"]])}
print(json.dumps(out))
ray.shutdown()
cluster.shutdown()
'''


def run_cluster_scenarios(case: str, rounds: int, timeout_s: float = 500.0) -> dict[str, Any]:
    """Both scenarios' results (see the module docstring); fails with the subprocess's stderr tail."""
    proc = subprocess.run([sys.executable, "-c", SCRIPT, case, str(rounds)], capture_output=True, text=True,
                          timeout=timeout_s, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{"rounds"')]
    assert lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(lines[-1])
    return out
