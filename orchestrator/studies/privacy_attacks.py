"""Inference attacks on a run's transcript: what each party can reconstruct of a DSO from what it received.

A party's view of DSO k (``party_view``) is cut from the run's ``Transcript`` (``orchestrator.runtime.
transcript``) by the threat model (``privacy_threat``): the orchestrator gets every reply (DSO k's and the
TSO's), a link observer the requests to and replies of DSO k, the TSO its own requests (start point,
evaluated imports, merge columns, ADMM targets, final boundary) and its own prices, another DSO the
centres of its CSSO optimisations (the whole boundary).

Targets per DSO and period (truth: the DSO's own final dispatch): net load (loads - available PV - available
wind) [MW], boundary import [MW], PV availability [MW], EV energy (net EV withdrawal x dt) [MWh]; and its
marginal cost curve (d own cost / d import / dt [$/MWh] at its final import and +-``CURVE_SHIFT_MW``).

Attacks, each without the victim's truth:
- direct: net load = the first import profile seen (the start point of every iterative strategy is the
  DSOs' forecast), import = the last one seen (the final boundary);
- regression: ridge regression per period from the view's features (first, last and mean import seen, the
  mean marginal cost seen, the public profile shapes), trained on the other DSOs' views and truths (the
  party colludes with the other DSOs, who know their own data) and applied to the victim;
- cost curve: per period a least-squares line marginal cost = a + b x through the (import, marginal cost)
  pairs the view holds — the DSO's own sensitivities, or KKT inversion where the structure is public: a
  price response x(lambda) has marginal cost -lambda, an ADMM step x = prox(target) has rho (target - x)/dt,
  and at a coordinated point the DSO's marginal cost is minus the TSO's price there.
The best attack per quantity is the one with the highest R^2 (cost curve: the lowest relative error).
Baseline: the same regression with public features only (the public load and PV profile shapes the case
names), and for the cost curve "no information" (predicting 0 $/MWh: relative error 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.subspace import Evaluate, MergeColumns, Optimize, Prox, Report, Respond
from orchestrator.runtime.transcript import Transcript

QUANTITIES = ("net_load", "import", "pv", "ev_energy")
ATTACK_PARTIES = ("orchestrator", "link-observer", "tso", "other-dso")
#: the cost curve is compared at the final import and shifted by this much in every period [MW]
CURVE_SHIFT_MW = 0.1
RIDGE = 1e-2
#: pairs nearest the final import used for the cost-curve line
CURVE_PAIRS = 12


@dataclass
class View:
    """What one party holds about DSO k: import profiles (T,) [MW] in the order seen, (import, marginal cost
    [$/MWh]) pairs from the DSO's replies and from the TSO's prices (KKT)."""

    imports: list[np.ndarray] = field(default_factory=list)
    mc: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    mc_kkt: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    first: np.ndarray | None = None
    final: np.ndarray | None = None


def _finite(a: Any) -> bool:
    return a is not None and bool(np.all(np.isfinite(np.asarray(a, dtype=float))))


def _dso_part(view: View, transcript: Transcript, k: int, dt_h: float) -> None:
    for e in transcript.of(1 + k):
        c, r = e.call, e.reply
        if isinstance(c, Evaluate):
            for p, ev in zip(np.atleast_2d(c.points), r, strict=True):
                view.imports.append(np.asarray(p, float))
                s = getattr(ev, "sensitivity_usd_per_mwh", None)
                if _finite(s):
                    view.mc.append((np.asarray(p, float), np.asarray(s, float).reshape(-1)))
        elif isinstance(c, Optimize):
            if getattr(r, "ok", False) and _finite(r.x):
                view.imports.append(np.asarray(r.x, float))
                if _finite(r.sensitivity_usd_per_mwh):
                    view.mc.append((np.asarray(r.x, float), np.asarray(r.sensitivity_usd_per_mwh, float)))
        elif isinstance(c, Respond):
            x = np.asarray(r[0], float)
            view.imports.append(x)
            view.mc.append((x, -np.asarray(c.price_usd_per_mwh, float)))  # KKT of min D(x) + dt lambda x
        elif isinstance(c, Prox):
            x = np.asarray(r[0], float)
            view.imports.append(x)  # KKT of min D(x) + rho/2 |x - t|^2: D'(x) = rho (t - x)
            view.mc.append((x, c.rho_usd_per_mw2 * (np.asarray(c.target_mw, float) - x) / dt_h))
        elif isinstance(c, Report):
            view.final = np.asarray(c.boundary_mw, float)


def _tso_part(view: View, transcript: Transcript, k: int, n_dso: int, dt_h: float, requests_only: bool) -> None:
    for e in transcript.of(0):
        c, r = e.call, e.reply
        if isinstance(c, Evaluate):
            for p, ev in zip(np.atleast_2d(c.points), r, strict=True):
                pk = np.asarray(p, float).reshape(n_dso, -1)[k]
                view.imports.append(pk)
                if view.first is None and requests_only:
                    view.first = pk
                price = np.asarray(ev.sensitivity_usd_per_mwh, float).reshape(n_dso, -1)[k]
                view.mc_kkt.append((pk, -price))
        elif isinstance(c, MergeColumns):
            if requests_only:
                view.imports += [np.asarray(row, float) for row in c.columns.points[k]]
            xk = np.asarray(r.x, float).reshape(n_dso, -1)[k]
            view.imports.append(xk)
            view.mc_kkt.append((xk, -np.asarray(r.evaluation.sensitivity_usd_per_mwh, float).reshape(n_dso, -1)[k]))
        elif isinstance(c, Prox) and requests_only:
            view.imports.append(np.asarray(c.target_mw, float).reshape(n_dso, -1)[k])
        elif isinstance(c, Report) and requests_only:
            view.final = np.asarray(c.boundary_mw, float).reshape(n_dso, -1)[k]


def party_view(transcript: Transcript, party: str, k: int, n_dso: int, n_periods: int, dt_h: float) -> View:
    """What ``party`` received about DSO k in the run (see the module docstring)."""
    v = View()
    own = slice(k * n_periods, (k + 1) * n_periods)
    if party in ("orchestrator", "link-observer"):
        if transcript.forecast is not None:
            v.first = np.asarray(transcript.forecast, float)[own]
        _dso_part(v, transcript, k, dt_h)
        if party == "orchestrator":
            _tso_part(v, transcript, k, n_dso, dt_h, requests_only=False)
    elif party == "tso":
        _tso_part(v, transcript, k, n_dso, dt_h, requests_only=True)
    elif party == "other-dso":
        if n_dso < 2:
            return v
        j = (k + 1) % n_dso
        for e in transcript.of(1 + j):
            if isinstance(e.call, Optimize):
                ck = np.asarray(e.call.center, float)[own]
                v.imports.append(ck)
                v.first = ck if v.first is None else v.first
                v.final = ck
    else:
        raise ValueError(f"unknown party {party!r} (known: {', '.join(ATTACK_PARTIES)})")
    if v.final is None and v.imports:
        v.final = v.imports[-1]
    return v


# -- estimators ----------------------------------------------------------------------------------------------

def r2(y: np.ndarray, y_hat: np.ndarray) -> float:
    """Coefficient of determination over the periods (NaN for a constant truth)."""
    y, y_hat = np.asarray(y, float), np.asarray(y_hat, float)
    sst = float(np.sum((y - y.mean()) ** 2))
    if sst <= 1e-12 * max(1.0, float(np.sum(y ** 2))):
        return float("nan")
    return 1.0 - float(np.sum((y - y_hat) ** 2)) / sst


def rel_error(y: np.ndarray, y_hat: np.ndarray) -> float:
    """|y_hat - y| / |y| over the entries where the truth is known."""
    y, y_hat = np.asarray(y, float), np.asarray(y_hat, float)
    ok = np.isfinite(y)
    n = float(np.linalg.norm(y[ok]))
    return float(np.linalg.norm(y_hat[ok] - y[ok])) / n if n > 0 else float("nan")


def features(view: View, public: np.ndarray, n_periods: int, public_only: bool = False,
             with_public: bool = True) -> np.ndarray:
    """(T, F) per-period features of a view: first, last and mean import seen [MW], mean marginal cost seen
    (own replies, KKT prices) [$/MWh], then the public shapes; missing features are 0."""
    cols = [np.asarray(public, float).reshape(-1, n_periods).T] if with_public else []
    if not public_only:
        z = np.zeros(n_periods)
        imp = np.vstack(view.imports) if view.imports else None
        mc = np.vstack([s for _, s in view.mc]) if view.mc else None
        kkt = np.vstack([s for _, s in view.mc_kkt]) if view.mc_kkt else None
        cols.append(np.column_stack([
            view.first if view.first is not None else z, view.final if view.final is not None else z,
            imp.mean(axis=0) if imp is not None else z, mc.mean(axis=0) if mc is not None else z,
            kkt.mean(axis=0) if kkt is not None else z]))
    return np.hstack(cols)


def ridge_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, lam: float = RIDGE) -> np.ndarray:
    """Ridge regression on standardised features with an intercept."""
    mu, sd = x_train.mean(axis=0), x_train.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    a, b = (x_train - mu) / sd, (x_test - mu) / sd
    y0 = y_train.mean()
    beta = np.linalg.solve(a.T @ a + lam * len(a) * np.eye(a.shape[1]), a.T @ (y_train - y0))
    return y0 + b @ beta


def curve_prediction(pairs: list[tuple[np.ndarray, np.ndarray]], points: np.ndarray) -> np.ndarray | None:
    """Per period a line s = a + b x (b >= 0: a convex cost has a rising marginal cost) through the pairs nearest
    the test points' centre; evaluated at ``points`` (m, T). None without pairs."""
    if not pairs:
        return None
    center = points[len(points) // 2]
    order = np.argsort([float(np.linalg.norm(x - center)) for x, _ in pairs])[:CURVE_PAIRS]
    xs = np.vstack([pairs[i][0] for i in order])
    ss = np.vstack([pairs[i][1] for i in order])
    out = np.empty_like(points, dtype=float)
    for t in range(points.shape[1]):
        x, s = xs[:, t], ss[:, t]
        if len(x) >= 2 and float(np.std(x)) > 1e-3:
            b = max(0.0, float(np.polyfit(x, s, 1)[0]))
        else:
            b = 0.0
        a = float(np.mean(s - b * x))
        out[:, t] = a + b * points[:, t]
    return out


@dataclass(frozen=True)
class Truth:
    """The victim DSO's own values (T,) per quantity, and its marginal cost at the curve's test points."""

    hourly: dict[str, np.ndarray]
    curve_points: np.ndarray  # (m, T) [MW]
    curve_mc: np.ndarray  # (m, T) [$/MWh]


def attack(views: list[View], truths: list[Truth], public: list[np.ndarray], n_periods: int
           ) -> dict[str, list[dict[str, Any]]]:
    """Per DSO: the best attack's R^2 and relative error per quantity, the baseline's, and the cost-curve error.

    ``views[k]``/``truths[k]``/``public[k]`` for every DSO k of the run (the regression trains on the others)."""
    n = len(views)
    feats = [features(v, p, n_periods) for v, p in zip(views, public, strict=True)]
    pub = [features(v, p, n_periods, public_only=True) for v, p in zip(views, public, strict=True)]
    msg = [features(v, p, n_periods, with_public=False) for v, p in zip(views, public, strict=True)]
    out: dict[str, list[dict[str, Any]]] = {q: [] for q in (*QUANTITIES, "cost_curve")}
    for k in range(n):
        others = [j for j in range(n) if j != k]
        for q in QUANTITIES:
            y = truths[k].hourly[q]
            cands: dict[str, np.ndarray] = {}
            first, final = views[k].first, views[k].final
            if q == "net_load" and first is not None:
                cands["direct"] = first
            if q == "import" and final is not None:
                cands["direct"] = final
            base = np.full_like(y, np.nan)
            if others:
                xt = np.vstack([feats[j] for j in others])
                yt = np.concatenate([truths[j].hourly[q] for j in others])
                cands["regression"] = ridge_predict(xt, yt, feats[k])
                cands["regression (messages only)"] = ridge_predict(np.vstack([msg[j] for j in others]), yt, msg[k])
                base = ridge_predict(np.vstack([pub[j] for j in others]), yt, pub[k])
            scores = {name: r2(y, yh) for name, yh in cands.items()}
            finite = {name: s for name, s in scores.items() if np.isfinite(s)}
            best = max(finite, key=lambda name: finite[name]) if finite else None
            own = [s for name, s in finite.items() if name != "regression"]
            out[q].append({"r2": finite[best] if best else float("nan"),
                           "r2_messages_only": max(own) if own else float("nan"),
                           "rel_error": rel_error(y, cands[best]) if best else float("nan"),
                           "attack": best or "none", "baseline_r2": r2(y, base),
                           "baseline_rel_error": rel_error(y, base)})
        errs = {}
        for name, pairs in (("own replies", views[k].mc), ("kkt prices", views[k].mc_kkt)):
            pred = curve_prediction(pairs, truths[k].curve_points)
            if pred is not None:
                errs[name] = rel_error(truths[k].curve_mc, pred)
        best_c = min(errs, key=lambda name: errs[name]) if errs else None
        out["cost_curve"].append({"rel_error": errs[best_c] if best_c else 1.0, "attack": best_c or "none",
                                  "baseline_rel_error": 1.0})
    return out


#: quantities that are the same in every run of a day (the DSO's own data), so runs can be pooled against them
RUN_INVARIANT = ("net_load", "pv")


def attack_across_runs(runs: list[list[View]], truths: list[Truth], public: list[np.ndarray], n_periods: int
                       ) -> dict[str, list[dict[str, Any]]]:
    """The regression across runs: the party saw several runs of the same day under different prices (``runs[r]
    [k]``: its view of DSO k in run r) and regresses the run-invariant quantities (``RUN_INVARIANT``) per period on
    the features of every run side by side (with and without the public shapes), trained on the other DSOs (the
    coalition, as in ``attack``); ``direct (mean over runs)`` averages the first import seen over the runs (in DP
    mode each run draws fresh noise, so averaging divides its variance by the number of runs — and the DSO has
    spent the budget of every run). Per DSO: the best R^2 and the best without the public shapes."""
    n = len(truths)
    out: dict[str, list[dict[str, Any]]] = {q: [] for q in RUN_INVARIANT}
    feats = [np.hstack([features(run[k], public[k], n_periods, with_public=False) for run in runs]
                       + [np.asarray(public[k], float).reshape(-1, n_periods).T]) for k in range(n)]
    msg = [np.hstack([features(run[k], public[k], n_periods, with_public=False) for run in runs]) for k in range(n)]
    for k in range(n):
        others = [j for j in range(n) if j != k]
        firsts: list[np.ndarray] = [f for f in (run[k].first for run in runs) if f is not None]
        for q in RUN_INVARIANT:
            y = truths[k].hourly[q]
            cands: dict[str, np.ndarray] = {}
            if q == "net_load" and firsts:
                cands["direct (mean over runs)"] = np.mean(firsts, axis=0)
            if others:
                yt = np.concatenate([truths[j].hourly[q] for j in others])
                cands["regression across runs"] = ridge_predict(np.vstack([feats[j] for j in others]), yt, feats[k])
                cands["regression across runs (messages only)"] = ridge_predict(
                    np.vstack([msg[j] for j in others]), yt, msg[k])
            scores = {name: r2(y, yh) for name, yh in cands.items() if np.isfinite(r2(y, yh))}
            own = [s for name, s in scores.items() if "messages only" in name or name.startswith("direct")]
            best = max(scores, key=lambda name: scores[name]) if scores else None
            out[q].append({"r2": scores[best] if best else float("nan"), "attack": best or "none",
                           "r2_messages_only": max(own) if own else float("nan")})
    return out
