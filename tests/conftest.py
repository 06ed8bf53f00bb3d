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
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        started = True
    yield
    if started:
        ray.shutdown()
