"""The CSSO loop on small problems with known optima (serial executor, no Ray)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from orchestrator.csso.loop import CssoOptions, run_csso
from orchestrator.csso.sellar import F_STAR, INDEX_1, INDEX_2, LOWER, UPPER, SellarDiscipline
from orchestrator.csso.surrogate import IcnnSurrogate, SurrogateWeights, first_order_corrected
from orchestrator.runtime import SerialExecutor


@dataclass(frozen=True)
class _Resp:
    cost_usd: float
    gradient: np.ndarray


class Quadratic:
    """f(x) = |M x - m|^2 over its slice: a convex subspace with a closed-form joint optimum."""

    def __init__(self, mat: np.ndarray, rhs: np.ndarray) -> None:
        self.mat, self.rhs = mat, rhs

    def evaluate_many(self, points: np.ndarray) -> list[_Resp]:
        out = []
        for p in points:
            r = self.mat @ p - self.rhs
            out.append(_Resp(float(r @ r), 2 * self.mat.T @ r))
        return out

    def optimize(self, others: list, center: np.ndarray, move: np.ndarray) -> None:
        return None  # proposals are optional: the loop then relies on the system coordination


def test_icnn_fits_values_and_gradients_and_stays_convex() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(40, 3))
    f = (x**2).sum(1) + x[:, 0]
    g = 2 * x + np.array([1.0, 0, 0])
    s = IcnnSurrogate(3, np.zeros(3), np.ones(3), epochs=400)
    s.fit(x, f, g)
    w = s.weights()
    assert np.all(w.v >= 0)
    err = np.abs(w.value(x) - f).max()
    assert err < 0.25, err
    # midpoint convexity on random pairs
    a, b = rng.uniform(-1, 1, size=(2, 50, 3))
    assert np.all(w.value((a + b) / 2) <= (w.value(a) + w.value(b)) / 2 + 1e-9)
    c = first_order_corrected(w, np.zeros(3), 0.0, np.array([1.0, 0, 0]))
    assert abs(float(c.value(np.zeros(3)))) < 1e-9
    np.testing.assert_allclose(c.gradient(np.zeros(3) + 1e-9), [1.0, 0, 0], atol=1e-6)


def test_weights_cross_as_plain_numpy() -> None:
    s = IcnnSurrogate(4, np.ones(4), 2 * np.ones(4), hidden=5)
    w = s.weights()
    assert isinstance(w, SurrogateWeights)
    for arr in (w.w, w.b, w.v, w.a):
        assert isinstance(arr, np.ndarray)
    assert w.w.shape == (5, 4) and w.nbytes() == 8 * (20 + 5 + 5 + 4 + 1)


def test_loop_converges_on_coupled_quadratics() -> None:
    rng = np.random.default_rng(3)
    m1, m2 = rng.normal(size=(4, 4)), rng.normal(size=(3, 2))
    r1, r2 = rng.normal(size=4), rng.normal(size=3)
    idx1, idx2 = np.arange(4), np.array([1, 3])
    big = np.vstack([m1, np.zeros((3, 4))])
    big[4:, idx2] = m2
    x_star = np.linalg.lstsq(big, np.concatenate([r1, r2]), rcond=None)[0]
    f_star = float(np.sum((big @ x_star - np.concatenate([r1, r2])) ** 2))
    ex = SerialExecutor([(Quadratic, (m1, r1)), (Quadratic, (m2, r2))])
    res = run_csso(ex, [idx1, idx2], np.zeros(4), -5 * np.ones(4), 5 * np.ones(4), np.ones(4),
                   CssoOptions(max_rounds=40, radius0=0.5, epochs=150, tol_x=1e-4, tol_f=1e-7, tol_err=1e-4))
    assert res.objective - f_star < 1e-3 * max(1.0, f_star), (res.objective, f_star)
    assert ex.traffic.rounds == res.rounds


def test_sellar_disciplines_gradients_match_finite_differences() -> None:
    b = np.array([1.5, 0.5, 0.3, 3.5, 3.8])
    for d, idx in ((SellarDiscipline(1), INDEX_1), (SellarDiscipline(2), INDEX_2)):
        g = d.evaluate(b[idx]).gradient
        for i in range(idx.size):
            e = np.zeros(idx.size)
            e[i] = 1e-6
            fd = (d.evaluate(b[idx] + e).cost_usd - d.evaluate(b[idx] - e).cost_usd) / 2e-6
            assert abs(fd - g[i]) < 1e-3 * max(1.0, abs(fd))


@pytest.mark.xfail(strict=True, reason="known gap: the penalised Sellar valley stalls the trust region "
                   "(see the CSSO report); the loop improves J 10x but does not reach f* yet")
def test_csso_reaches_sellar_optimum() -> None:
    ex = SerialExecutor([(SellarDiscipline, (1,)), (SellarDiscipline, (2,))])
    res = run_csso(ex, [INDEX_1, INDEX_2], np.array([2.0, 1.0, 1.0, 4.0, 4.0]), LOWER, UPPER, np.ones(5),
                   CssoOptions(max_rounds=25, radius0=1.0, epochs=150))
    assert abs(res.objective - F_STAR) < 1e-2
