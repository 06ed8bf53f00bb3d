"""The CSSO loop's plumbing: what a subspace is sent, and that it is exact."""

from __future__ import annotations

import numpy as np

from core.icnn import SurrogateWeights
from orchestrator.strategies.csso.loop import _restricted_others
from orchestrator.strategies.iterative import Layout

RNG = np.random.default_rng(7)


def _weights(n: int, hidden: int = 5) -> SurrogateWeights:
    return SurrogateWeights(w=RNG.normal(size=(hidden, n)), b=RNG.normal(size=hidden), v=RNG.uniform(0, 1, hidden),
                            a=RNG.normal(size=n), c=float(RNG.normal()))


def test_restrict_is_the_same_function_of_the_kept_inputs() -> None:
    n = 12
    w = _weights(n)
    keep = np.zeros(n, dtype=bool)
    keep[[2, 3, 7]] = True
    fixed = RNG.normal(size=n)
    r = w.restrict(keep, fixed)
    assert r.w.shape == (5, 3) and r.a.shape == (3,)
    for _ in range(20):
        x = fixed.copy()
        x[keep] = RNG.normal(size=3) * 10
        assert np.isclose(r.value(x[keep]), w.value(x), rtol=0, atol=1e-9)
        assert np.allclose(r.gradient(x[keep]), w.gradient(x)[keep], atol=1e-9)


def test_a_dso_receives_only_the_tso_model_of_its_own_import() -> None:
    """Subspace 0 (TSO) sees all of x; DSO k sees its T entries: the DSO gets one T-input model whatever NN."""
    for n_dso in (3, 32):
        layout = Layout(n_dso, 24)
        indices = layout.indices()
        weights = [_weights(i.size) for i in indices]
        center = RNG.normal(size=layout.n)
        for k in range(1, n_dso + 1):
            others = _restricted_others(indices, weights, k, center)
            assert len(others) == 1
            idx, w = others[0]
            assert np.array_equal(idx, indices[k]) and w.w.shape == (5, 24)
            x = center.copy()
            x[idx] += RNG.normal(size=24)
            assert np.isclose(w.value(x[idx]), weights[0].value(x), atol=1e-8)
        tso_view = _restricted_others(indices, weights, 0, center)
        assert len(tso_view) == n_dso
        assert all(w is weights[j + 1] for j, (_, w) in enumerate(tso_view))  # unrestricted: it moves everything


def test_a_per_input_net_embeds_as_the_dense_one_and_other_weights_are_refused() -> None:
    """The hub's restricted surrogates read one period each (W block-diagonal): they are embedded with W as its
    (H,) entries, which cvxpy compiles far faster; minimising over the embedding gives the net's value, the
    same as the dense embedding, and a W of another shape is refused, never cut to the block pattern."""
    import cvxpy as cp
    import pytest

    from core.icnn import icnn_cost, is_block, set_icnn

    n, per = 6, 3
    hidden = n * per
    w = np.zeros((hidden, n))
    w[np.arange(hidden), np.repeat(np.arange(n), per)] = RNG.normal(size=hidden)
    net = SurrogateWeights(w=w, b=RNG.normal(size=hidden), v=RNG.uniform(0, 1, hidden), a=RNG.normal(size=n),
                           c=float(RNG.normal()))
    assert is_block(net.w) and is_block(np.zeros((n, n))) and not is_block(_weights(n, hidden).w)
    assert not is_block(np.zeros((hidden + 1, n)))
    x0 = RNG.normal(size=n) * 3
    values = []
    for block in (False, True):
        x = cp.Variable(n)
        cost, cons, prm = icnn_cost(x, hidden, f"s{int(block)}", block=block)
        set_icnn(prm, net)
        cp.Problem(cp.Minimize(cost), [*cons, x == x0]).solve(solver="CLARABEL")
        values.append(cost.value)
        if block:
            with pytest.raises(ValueError, match="not a per-input net's"):
                set_icnn(prm, _weights(n, hidden))
    assert values[0] == pytest.approx(float(net.value(x0)), rel=1e-7)
    assert values[1] == pytest.approx(float(net.value(x0)), rel=1e-7)


def test_a_dso_proposal_is_the_same_whether_its_surrogate_reads_other_entries_or_only_its_own() -> None:
    """A surrogate over the DSO's own imports and another DSO's (fixed at the centre) gives the proposal of
    the same surrogate restricted to the DSO's own imports: the compiled problem drops the rest of the boundary
    only when no surrogate reads it."""
    from dso.subspace import DsoSubspace
    from orchestrator.system.embedded import build_system

    system = build_system("ieee30-3x33")
    t_n = system.spec.periods
    feeders = system.feeders[:2]
    own = np.arange(t_n, 2 * t_n)
    dso = DsoSubspace(feeders[1].data, feeders[1].inputs, own, ac_check=False)
    center = np.concatenate([DsoSubspace(f.data, f.inputs, np.arange(t_n), ac_check=False).forecast_mw()
                             for f in feeders])
    both = np.arange(2 * t_n)
    w = _weights(both.size)
    w = SurrogateWeights(w=w.w * 0.05, b=w.b, v=w.v * 10.0, a=w.a, c=w.c)
    move = np.full(both.size, 0.5)
    wide = dso.optimize([(both, w)], center, move)
    narrow = dso.optimize([(own, w.restrict(np.isin(both, own), center))], center, move)
    assert wide.ok and narrow.ok
    assert np.allclose(wide.x, narrow.x, atol=1e-5)
    assert np.isclose(wide.predicted_usd, narrow.predicted_usd, rtol=1e-7, atol=1e-4)
    assert len(dso._problems) == 2  # two compiled layouts: with and without the rest of the boundary
