"""Shared fixtures: ONE local Ray for the whole session (only started by tests that ask for it)."""

from __future__ import annotations

from collections.abc import Iterator

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
