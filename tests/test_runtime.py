"""The Ray executor (one actor per subspace, shared session Ray) against the serial reference, on Sellar."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.runtime.executors import RayExecutor, SerialExecutor, Shared, make_executor
from orchestrator.strategies.csso.loop import CssoOptions, run_csso
from tests.helpers.sellar import INDEX_1, INDEX_2, LOWER, UPPER, SellarDiscipline

START = np.array([5.0, 2.0, 1.0, 10.0, 3.0])
OPTIONS = CssoOptions(max_rounds=2, radius0=1.0, epochs=60)


def test_ray_actors_give_the_serial_rounds_and_count_traffic(ray_session: None) -> None:
    factories = [(SellarDiscipline, (Shared(0),)), (SellarDiscipline, (2,))]
    ray_ex = make_executor("ray", factories, shared=[1])
    try:
        assert isinstance(ray_ex, RayExecutor) and len(ray_ex) == 2
        assert ray_ex.nodes and ray_ex.nodes != ["local"]
        on_ray = run_csso(ray_ex, [INDEX_1, INDEX_2], START, LOWER, UPPER, np.ones(5), OPTIONS)
        traffic = ray_ex.traffic
    finally:
        ray_ex.close()
    serial = SerialExecutor([(SellarDiscipline, (1,)), (SellarDiscipline, (2,))])
    on_serial = run_csso(serial, [INDEX_1, INDEX_2], START, LOWER, UPPER, np.ones(5), OPTIONS)
    assert on_ray.rounds == on_serial.rounds == 2
    np.testing.assert_allclose(on_ray.x, on_serial.x, rtol=1e-9)
    assert on_ray.solves == on_serial.solves
    assert traffic.rounds == 2 and traffic.messages == 2 * 2 * 2 and traffic.bytes > 0
    assert traffic.bytes == serial.traffic.bytes  # the same messages cross either way


def test_unknown_executor_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="'threads'"):
        make_executor("threads", [(SellarDiscipline, (1,))])


class _Failing:
    name = "dso9"

    def evaluate_many(self, points: np.ndarray) -> list[float]:
        raise _UnpicklableError(f"bad boundary {float(points[0, 0])}", "infeasible")


class _UnpicklableError(RuntimeError):
    def __init__(self, message: str, status: str) -> None:  # two required args: pickle cannot rebuild it
        super().__init__(message)
        self.status = status


def test_actor_failures_come_back_picklable_and_name_the_call() -> None:
    import pickle

    from core.subspace import Evaluate
    from orchestrator.runtime.executors import PortableSubspaceHost, SubspaceCallError

    with pytest.raises(SubspaceCallError) as info:
        PortableSubspaceHost(_Failing).run([Evaluate(np.array([3.5]))])
    assert "'dso9' Evaluate" in str(info.value) and "bad boundary 3.5" in str(info.value)
    assert str(pickle.loads(pickle.dumps(info.value))) == str(info.value)


class _Big:
    def __init__(self, data: np.ndarray, shared: np.ndarray) -> None:
        self.n = data.size + shared.size

    def size(self) -> int:
        return self.n


def test_large_constructor_data_reaches_the_actors_without_an_error_level_line(
        ray_session: None, capfd: pytest.CaptureFixture[str]) -> None:
    """Arguments too large to inline (8 MB each) and shared data: every actor is built from them, and Ray prints
    no 'constructor arguments in the object store' error (a restarted actor could not be rebuilt from those)."""
    big = np.ones(1_000_000)
    ex = RayExecutor([(_Big, (big, Shared(0))), (_Big, (big, Shared(0)))], shared=[np.ones(10)])
    try:
        assert ex.round([[_Big.size], [_Big.size]]) == [[1_000_010], [1_000_010]]
    finally:
        ex.close()
    err = capfd.readouterr().err
    assert "constructor arguments in the object store" not in err, err[-2000:]


def test_actor_groups_deal_free_subspaces_and_keep_pinned_ones_alone() -> None:
    from orchestrator.runtime.executors import actor_groups

    assert actor_groups(5, {}, 2) == [[0, 2, 4], [1, 3]]
    assert actor_groups(3, {}, 8) == [[0], [1], [2]]  # never more actors than subspaces
    assert actor_groups(4, {2: "gridcoord:dso2"}, 2) == [[0, 3], [1], [2]]
    assert actor_groups(2, {0: "gridcoord:tso", 1: "gridcoord:dso1"}, 4) == [[0], [1]]
    with pytest.raises(ValueError, match="actors: 0"):
        actor_groups(3, {}, 0)
    with pytest.raises(ValueError, match="actors: 0"):  # before Ray is started or anything is stored
        RayExecutor([(_Counter, (0,))], actors=0)


class _Counter:
    """A subspace with state: how often it was called, and which process it lives in."""

    def __init__(self, k: int) -> None:
        self.k, self.calls = k, 0

    def tick(self) -> tuple[int, int, int]:
        import os

        self.calls += 1
        return self.k, self.calls, os.getpid()


def test_subspaces_sharing_an_actor_keep_their_own_state(ray_session: None) -> None:
    """Five subspaces on two actors: each call reaches its own subspace (its own count), two processes serve
    them, and a round still sends one message per subspace."""
    ex = RayExecutor([(_Counter, (k,)) for k in range(5)], actors=2)
    try:
        assert len(ex) == 5 and len(ex.hosts) == 2 and ex.groups == [[0, 2, 4], [1, 3]]
        first = ex.round([[_Counter.tick]] * 5)
        second = ex.round([[_Counter.tick, _Counter.tick]] * 5)
    finally:
        ex.close()
    assert [r[0][:2] for r in first] == [(k, 1) for k in range(5)]
    assert [[c[:2] for c in r] for r in second] == [[(k, 2), (k, 3)] for k in range(5)]
    pids = [r[0][2] for r in first]
    assert pids[0] == pids[2] == pids[4] != pids[1] == pids[3]
    assert ex.traffic.messages == 2 * 2 * 5


def test_a_killed_group_actor_comes_back_with_all_its_subspaces(ray_session: None) -> None:
    """Three subspaces on one actor; its process is killed: the next round is answered by its restart, which
    rebuilt every subspace of the group from the cluster store (fresh state: the count starts again)."""
    import os
    import signal

    ex = RayExecutor([(_Counter, (k,)) for k in range(3)], actors=1)
    try:
        before = ex.round([[_Counter.tick]] * 3)
        os.kill(before[0][0][2], signal.SIGKILL)
        after = ex.round([[_Counter.tick]] * 3)
        placement = ex.current_placement()
    finally:
        ex.close()
    assert [r[0][:2] for r in before] == [r[0][:2] for r in after] == [(k, 1) for k in range(3)]
    assert len({r[0][2] for r in after}) == 1 and after[0][0][2] != before[0][0][2]  # one new process
    assert len(placement) == 3 and len(set(placement)) == 1


class _Waiting:
    """A subspace whose call waits (as a stub waits on its service) and says when it ran."""

    def __init__(self, k: int) -> None:
        self.k = k

    def wait(self) -> tuple[float, float]:
        import time

        t0 = time.time()
        time.sleep(0.5)
        return t0, time.time()


def test_remote_subspaces_get_their_own_actors_and_all_calls_at_once(ray_session: None) -> None:
    """Stubs of services (remote=True) each get an actor, and a round does not hold their calls back to the
    node's 2 CPUs: all three calls are running at the same moment. Local subspaces on the same 2 CPUs: the third
    starts only after one of the first two has ended."""
    spans = {}
    for remote in (True, False):
        ex = RayExecutor([(_Waiting, (k,)) for k in range(3)], remote=remote, actors=None if remote else 3)
        try:
            assert len(ex.hosts) == 3
            spans[remote] = [r[0] for r in ex.round([[_Waiting.wait]] * 3)]
        finally:
            ex.close()
    assert max(s for s, _ in spans[True]) < min(e for _, e in spans[True])
    assert max(s for s, _ in spans[False]) >= min(e for _, e in spans[False])


def test_remote_subspaces_grouped_on_one_actor_still_run_at_once(ray_session: None) -> None:
    """Three stubs on ONE actor (``--ray-actors 1`` against services): the actor runs their calls side by
    side, so one operator's wait does not queue the others' (all three calls are running at the same moment),
    and each stub keeps its own calls in order across rounds."""
    ex = RayExecutor([(_Waiting, (k,)) for k in range(3)], remote=True, actors=1)
    try:
        assert len(ex.hosts) == 1
        spans = [r[0] for r in ex.round([[_Waiting.wait]] * 3)]
        again = ex.round([[_Waiting.wait, _Waiting.wait]] * 3)
    finally:
        ex.close()
    assert max(s for s, _ in spans) < min(e for _, e in spans)
    assert all(first[1] <= second[0] for first, second in again)  # a stub's own calls: one after another
