"""Shared fixtures: ONE local Ray for the whole session (only started by tests that ask for it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.summary import SUMMARY_LINES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in SUMMARY_LINES:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    import ray

    started = False
    if not ray.is_initialized():
        # address="local": always this session's own Ray, as the product starts it (orchestrator.runtime.executors.
        # ensure_ray); a bare init() joins whatever cluster another process on the machine left as 'current'
        # (another test run's two-node cluster) and then refuses num_cpus
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        started = True
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def reference_system() -> Any:
    """The reference case ``ieee30-3x33``, built once per session (the system is frozen: tests only read it)."""
    from orchestrator.system.embedded import build_system

    return build_system("ieee30-3x33")


@pytest.fixture(scope="session")
def reference_centralized(reference_system: Any) -> Any:
    """ONE centralized run of the reference case with the product's default options (AC check on), shared by
    every test that reads the optimum: its objective, prices, dispatch or written run."""
    from orchestrator.strategies import RunOptions, get_strategy

    return get_strategy("centralized").run(reference_system, RunOptions())


@pytest.fixture(scope="session")
def cluster_scenarios() -> dict[str, Any]:
    """Node loss (CSSO, 3 rounds) and placement (ADMM) on ONE two-node Ray cluster in a subprocess, small case
    (``tests/helpers/cluster.py``): read by ``test_fault_tolerance`` and ``test_cluster``."""
    from tests.helpers.cases import TINY_CASE
    from tests.helpers.cluster import run_cluster_scenarios

    return run_cluster_scenarios(TINY_CASE, rounds=3)


@pytest.fixture(scope="session")
def tiny_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The small case's operators as ``gridcoord serve`` processes over mTLS (AC check off), started once for
    ``test_fault_tolerance`` and ``test_services`` (starting five operator processes costs about 20 s on 2 cores).
    A test that kills an operator starts it again before it ends; at the end every operator must exit 0 on
    SIGTERM."""
    from orchestrator.cli.launch import LocalDeployment
    from tests.helpers.cases import TINY_CASE

    dep = LocalDeployment(TINY_CASE, tmp_path_factory.mktemp("operators"), ac_check=False)
    dep.start()
    yield dep
    codes = dep.stop()
    assert all(c == 0 for c in codes.values()), f"operators did not exit cleanly on SIGTERM: {codes}"
