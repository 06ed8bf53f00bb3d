"""Reservations under concurrent clients against a real `gridcoord serve aggregator` process: nothing lost,
nothing duplicated, every accepted reservation delivered inside its window (correctness only, no timing)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.bench.reservations import bench_reservations, make_jobs


def test_jobs_include_duplicates_retries_and_over_capacity() -> None:
    jobs = make_jobs(600, ["a", "b"], seed=3)
    kinds = {j.kind for j in jobs}
    assert {"normal", "duplicate", "duplicate_other_data", "over_capacity"} <= kinds
    assert any(j.retry for j in jobs)


def test_concurrent_reservations_are_neither_lost_nor_duplicated(tmp_path: Path) -> None:
    report = bench_reservations(clients=20, count=300, seed=2, workdir=tmp_path)
    assert report.ok(), report.format()
    assert report.answers == report.requests and report.lost == 0 and report.duplicated == 0
    assert report.unscheduled == 0 and report.booked == report.accepted > 0
    assert report.replays > 0  # retries and same-data duplicates were answered as replays, booked once
    assert report.refused.get("duplicate_id", 0) > 0 and report.refused.get("station_power", 0) > 0
    assert report.outside_window_kwh <= 1e-3 and report.min_margin_kwh >= -1e-3
