"""Input-convex ReLU surrogates of a subspace's response, trained on values AND sensitivities.

Model (one hidden layer, input-convex because the output weights are non-negative):

    s(x) = c + a . u + sum_j v_j relu(w_j . u + b_j),   u = (x - shift) / scale,   v >= 0

Training minimises a Sobolev loss  mean((s - f)^2) / var(f) + mean(|grad s - g|^2) / mean(|g|^2)
with Adam, warm-started from the previous round's weights. The weights leave this module as plain
numpy arrays in raw (unscaled) coordinates, ``core.icnn.SurrogateWeights``, so an operator can embed them as LP
constraints  h >= W x + b, h >= 0,  s = c + a . x + v . h  (exact at the optimum because v >= 0).
"""

from __future__ import annotations

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
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        u.requires_grad_(True)
        loss = torch.tensor(0.0)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny tensors: threading only adds overhead
        try:
            for _ in range(self.epochs):
                opt.zero_grad()
                y = self.net(u)
                (dy,) = torch.autograd.grad(y.sum(), u, create_graph=True)
                loss = ((y - fy) ** 2).mean() / f_var + self.grad_weight * ((dy - gu) ** 2).sum(1).mean() / g_var
                loss.backward()
                opt.step()
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
