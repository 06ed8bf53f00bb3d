"""Input-convex ReLU surrogates of a subspace's response, trained on values AND sensitivities.

Model (one hidden layer, input-convex because the output weights are non-negative):

    s(x) = c + a . u + sum_j v_j relu(w_j . u + b_j),   u = (x - shift) / scale,   v >= 0

Training minimises a Sobolev loss  mean((s - f)^2) / var(f) + mean(|grad s - g|^2) / mean(|g|^2)
with Adam, warm-started from the previous round's weights. The weights leave this module as plain
numpy arrays in raw (unscaled) coordinates, ``core.icnn.SurrogateWeights``, so an operator can embed them as LP
constraints  h >= W x + b, h >= 0,  s = c + a . x + v . h  (exact at the optimum because v >= 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.icnn import SurrogateWeights


class _Icnn(torch.nn.Module):
    def __init__(self, n: int, hidden: int) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(n, hidden)
        self.v_raw = torch.nn.Parameter(torch.full((hidden,), 0.01))
        self.skip = torch.nn.Linear(n, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.hidden(u))
        return self.skip(u).squeeze(-1) + h @ self.v_raw.clamp_min(0.0)


class IcnnSurrogate:
    """A per-subspace ICNN over ``n`` boundary variables; ``fit`` warm-starts from the last weights."""

    def __init__(self, n: int, shift: np.ndarray, scale: np.ndarray, hidden: int = 24, seed: int = 0,
                 epochs: int = 300, lr: float = 0.01, grad_weight: float = 1.0) -> None:
        if np.any(np.asarray(scale) <= 0):
            raise ValueError(f"IcnnSurrogate: scale must be > 0, got min {float(np.min(scale))}")
        torch.manual_seed(seed)
        self.n, self.hidden, self.epochs, self.lr, self.grad_weight = n, hidden, epochs, lr, grad_weight
        self.shift = np.asarray(shift, dtype=float).reshape(n)
        self.scale = np.asarray(scale, dtype=float).reshape(n)
        self.net = _Icnn(n, hidden).double()
        self.fitted = False
        self.last_loss = float("nan")

    def fit(self, x: np.ndarray, f: np.ndarray, g: np.ndarray) -> float:
        """Fit values f (m,) and gradients g (m, n) at points x (m, n); returns the final loss."""
        x, f, g = (np.asarray(a, dtype=float) for a in (x, f, g))
        u = torch.tensor((x - self.shift) / self.scale)
        fy = torch.tensor(f)
        gu = torch.tensor(g * self.scale)  # d f / d u
        f_mean = float(f.mean())
        f_var = max(float(f.var()), 1e-6 * max(1.0, f_mean**2), float((gu**2).sum(1).mean()) * 1e-2, 1e-12)
        g_var = max(float((gu**2).sum(1).mean()), 1e-12)
        if not self.fitted:  # start from the best linear model: value offset and mean gradient
            with torch.no_grad():
                self.net.skip.weight.copy_(gu.mean(0, keepdim=True))
                self.net.skip.bias.fill_(f_mean - float((u.mean(0) * gu.mean(0)).sum()))
        params = list(self.net.parameters())
        opt = _Adam(params, lr=self.lr)
        u.requires_grad_(True)
        loss = torch.tensor(0.0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny tensors: threading only adds overhead
        try:
            for _ in range(self.epochs):
                y = self.net(u)
                (dy,) = torch.autograd.grad(y.sum(), u, create_graph=True)
                loss = ((y - fy) ** 2).mean() / f_var + self.grad_weight * ((dy - gu) ** 2).sum(1).mean() / g_var
                opt.step(torch.autograd.grad(loss, params, allow_unused=True))
        finally:
            torch.set_num_threads(threads)
        self.fitted = True
        self.last_loss = float(loss.detach())
        return self.last_loss

    def weights(self) -> SurrogateWeights:
        """Weights in raw coordinates: u = (x - shift)/scale folded into W, b, a, c."""
        with torch.no_grad():
            w_u = self.net.hidden.weight.numpy().copy()
            b_u = self.net.hidden.bias.numpy().copy()
            v = self.net.v_raw.clamp_min(0.0).numpy().copy()
            a_u = self.net.skip.weight.numpy().reshape(-1).copy()
            c_u = float(self.net.skip.bias.numpy()[0])
        w = w_u / self.scale
        a = a_u / self.scale
        return SurrogateWeights(w=w, b=b_u - w @ self.shift, v=v, a=a, c=c_u - float(a @ self.shift))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.weights().value(x)


def first_order_corrected(w: SurrogateWeights, x_c: np.ndarray, f_c: float, g_c: np.ndarray) -> SurrogateWeights:
    """s(x) + (f_c - s(x_c)) + (g_c - grad s(x_c)) . (x - x_c): exact value and gradient at the centre.

    An affine correction keeps the surrogate convex and LP-embeddable; first-order consistency at the
    trust-region centre is what makes the ratio test converge (Alexandrov et al., 1998).
    """
    dg = np.asarray(g_c, dtype=float) - w.gradient(x_c)
    dc = float(f_c) - float(w.value(x_c)) - float(dg @ x_c)
    return SurrogateWeights(w=w.w, b=w.b, v=w.v, a=w.a + dg, c=w.c + dc)


class _Adam:
    """Adam (Kingma & Ba 2015; betas 0.9 / 0.999, eps 1e-8, bias-corrected), the update ``torch.optim.Adam``
    makes with its defaults, written out: ``torch.optim`` imports ``torch._dynamo`` on first use, about 2 s of
    a run's first fit, on the coordination's critical path."""

    def __init__(self, params: Sequence[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.n = [0] * len(params)  # steps taken per parameter (torch.optim counts per parameter too)

    @torch.no_grad()
    def step(self, grads: Sequence[torch.Tensor | None]) -> None:
        """One update; a parameter without a gradient (not in the graph) is left alone, as torch.optim does."""
        b1, b2 = self.betas
        for j, (p, g, m, v) in enumerate(zip(self.params, grads, self.m, self.v, strict=True)):
            if g is None:
                continue
            self.n[j] += 1
            step_size = self.lr / (1.0 - b1 ** self.n[j])
            bc2_sqrt = (1.0 - b2 ** self.n[j]) ** 0.5
            m.lerp_(g, 1.0 - b1)
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            p.addcdiv_(m, (v.sqrt() / bc2_sqrt).add_(self.eps), value=-step_size)


class HourlyIcnn:
    """The TSO's response surface hour by hour: for each period t an input-convex ReLU net over the K
    DSOs' imports of that period,

        s_t(u) = c_t + a_t . u + sum_j v_tj relu(w_tj . u + b_tj),   v >= 0,   u = x[:, t]  (K,) [MW],

    fitted on the TSO's cost of each period and its sensitivities (one TSO solve is T samples). The TSO's
    cost is a sum over periods, coupled only by ramp limits, so the sum of the T nets approximates it.
    A DSO sees the nets restricted to its own imports with the others fixed at the centre: T one-input
    convex functions (``restricted``), first-order exact at the centre. ``hidden = 0`` (``linear``) keeps
    only that first-order part (prices, no curvature)."""

    def __init__(self, n_dso: int, n_periods: int, hidden: int = 4, seed: int = 0, epochs: int = 300,
                 refit_epochs: int = 100, lr: float = 0.02) -> None:
        torch.manual_seed(seed)
        self.k, self.t, self.hidden = n_dso, n_periods, hidden
        self.epochs, self.refit_epochs, self.lr = epochs, refit_epochs, lr
        g = torch.Generator().manual_seed(seed)
        self.w = torch.nn.Parameter(0.5 * torch.randn(n_periods, hidden, n_dso, generator=g, dtype=torch.float64))
        self.b = torch.nn.Parameter(0.5 * torch.randn(n_periods, hidden, generator=g, dtype=torch.float64))
        self.v_raw = torch.nn.Parameter(torch.full((n_periods, hidden), 0.01, dtype=torch.float64))
        self.a = torch.nn.Parameter(torch.zeros(n_periods, n_dso, dtype=torch.float64))
        self.c = torch.nn.Parameter(torch.zeros(n_periods, dtype=torch.float64))
        self.shift = np.zeros((n_dso, n_periods))
        self.scale = np.ones((n_dso, n_periods))
        self.fitted = False
        self.last_loss = float("nan")

    def _forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (m, T, K) scaled inputs -> (m, T) values."""
        z = torch.einsum("thk,mtk->mth", self.w, u) + self.b
        return self.c + torch.einsum("tk,mtk->mt", self.a, u) + (torch.relu(z) * self.v_raw.clamp_min(0.0)).sum(-1)

    def fit(self, x: np.ndarray, f: np.ndarray, g: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> float:
        """Samples x (m, K, T) [MW], per-period costs f (m, T) [$], sensitivities g (m, K, T) [$/MW]; inputs are
        scaled as (x - shift) / scale (K, T). Returns the final loss."""
        if self.hidden == 0:
            return 0.0
        self.shift, self.scale = np.asarray(shift, float), np.maximum(np.asarray(scale, float), 1e-6)
        u = torch.tensor(((x - self.shift) / self.scale).transpose(0, 2, 1))  # (m, T, K)
        fy = torch.tensor(np.asarray(f, float))
        gu = torch.tensor((np.asarray(g, float) * self.scale).transpose(0, 2, 1))  # d f / d u (m, T, K)
        f_var = torch.clamp(fy.var(0) if fy.shape[0] > 1 else torch.zeros(self.t, dtype=torch.float64), min=1e-9)
        f_var = torch.maximum(f_var, 1e-2 * (gu**2).sum(-1).mean(0) + 1e-9)
        g_var = torch.clamp((gu**2).sum(-1).mean(0), min=1e-12)
        params = [self.w, self.b, self.v_raw, self.a, self.c]
        if not self.fitted:  # start from the best linear model per period
            with torch.no_grad():
                self.a.copy_(gu.mean(0))
                self.c.copy_(fy.mean(0) - (u.mean(0) * gu.mean(0)).sum(-1))
        opt = _Adam(params, lr=self.lr)
        u.requires_grad_(True)
        loss = torch.tensor(0.0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny tensors: threading only adds overhead
        try:
            for _ in range(self.refit_epochs if self.fitted else self.epochs):
                y = self._forward(u)
                (dy,) = torch.autograd.grad(y.sum(), u, create_graph=True)
                loss = (((y - fy) ** 2) / f_var).mean() + (((dy - gu) ** 2).sum(-1) / g_var).mean()
                opt.step(torch.autograd.grad(loss, params, allow_unused=True))
        finally:
            torch.set_num_threads(threads)
        self.fitted = True
        self.last_loss = float(loss.detach())
        return self.last_loss

    def _raw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(w (T,H,K), b (T,H), v (T,H), a (T,K), c (T,)) in raw units (x in MW)."""
        with torch.no_grad():
            w_u, b_u = self.w.numpy().copy(), self.b.numpy().copy()
            v = self.v_raw.clamp_min(0.0).numpy().copy()
            a_u, c_u = self.a.numpy().copy(), self.c.numpy().copy()
        scale, shift = self.scale.T, self.shift.T  # (T, K)
        w = w_u / scale[:, None, :]
        b = b_u - np.einsum("thk,tk->th", w, shift)
        a = a_u / scale
        c = c_u - np.einsum("tk,tk->t", a, shift)
        return w, b, v, a, c

    def restricted(self, k: int, center: np.ndarray, f_c: np.ndarray, g_c: np.ndarray) -> SurrogateWeights:
        """The sum of the period nets as a function of DSO k's imports (T,) with the others at ``center``
        (K, T), corrected to the exact per-period cost ``f_c`` (T,) and sensitivity ``g_c`` (K, T) [$/MW] at the
        centre: value and gradient exact there, curvature from the nets."""
        t_n, h = self.t, self.hidden
        u_c = np.asarray(center, float).T  # (T, K)
        if h == 0 or not self.fitted:
            w = np.zeros((max(h, 1) * t_n, t_n))
            return SurrogateWeights(w=w, b=np.zeros(w.shape[0]), v=np.zeros(w.shape[0]), a=np.asarray(g_c, float)[k],
                                    c=float(np.sum(f_c) - np.asarray(g_c, float)[k] @ np.asarray(center, float)[k]))
        w, b, v, a, c = self._raw()
        z_c = np.einsum("thk,tk->th", w, u_c) + b  # pre-activations at the centre
        act = z_c > 0
        value_c = c + np.einsum("tk,tk->t", a, u_c) + (np.maximum(z_c, 0.0) * v).sum(-1)  # (T,)
        grad_c = a + np.einsum("th,thk->tk", act * v, w)  # (T, K)
        # first-order correction per period: a_t += g - grad s_t(u_c), c_t += f - s_t(u_c) - (that) . u_c
        da = np.asarray(g_c, float).T - grad_c
        a = a + da
        c = c + (np.asarray(f_c, float) - value_c) - np.einsum("tk,tk->t", da, u_c)
        # restrict to DSO k: the others' pre-activation and linear terms fold into b and c
        others = np.ones(self.k, dtype=bool)
        others[k] = False
        b_k = b + np.einsum("thk,tk->th", w[:, :, others], u_c[:, others])
        c_k = float(np.sum(c + np.einsum("tk,tk->t", a[:, others], u_c[:, others])))
        w_k = np.zeros((t_n * h, t_n))
        w_k[np.arange(t_n * h), np.repeat(np.arange(t_n), h)] = w[:, :, k].reshape(-1)
        return SurrogateWeights(w=w_k, b=b_k.reshape(-1), v=v.reshape(-1), a=a[:, k].copy(), c=c_k)
