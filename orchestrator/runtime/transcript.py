"""The transcript of a run: every call the orchestrator sent to each subspace and every reply, per round.

``RecordingExecutor`` wraps any executor (``options.extra['transcript'] = Transcript()``); the privacy
study cuts it into what each party received (``orchestrator.studies.privacy_attacks``) and the accountant
counts a DSO's releases from it (``releases``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.subspace import Evaluate, Optimize, Prox, Respond
from core.traffic import Traffic
from orchestrator.runtime.executors import Call, Executor


@dataclass(frozen=True)
class Entry:
    round: int
    subspace: int  # 0 = TSO, 1 + k = DSO k
    call: Any  # a core.subspace call object
    reply: Any


@dataclass
class Transcript:
    entries: list[Entry] = field(default_factory=list)
    #: the DSOs' forecasts (K*T,) [MW] as the orchestrator received them (the start point)
    forecast: np.ndarray | None = None

    def of(self, subspace: int) -> list[Entry]:
        return [e for e in self.entries if e.subspace == subspace]

    def releases(self, subspace: int) -> int:
        """Replies of a DSO during coordination (its forecast, each evaluated point, each optimisation, price
        response and ADMM step); the final reports are not counted (they are not coordination messages)."""
        n = 1 if self.forecast is not None else 0
        for e in self.of(subspace):
            if isinstance(e.call, Evaluate):
                n += e.call.solves
            elif isinstance(e.call, Optimize | Respond | Prox):
                n += 1
        return n


class RecordingExecutor:
    """An executor that records every round into a ``Transcript``; everything else is the wrapped one's."""

    def __init__(self, inner: Executor, transcript: Transcript) -> None:
        self.inner, self.transcript = inner, transcript
        self.n = 0

    def __len__(self) -> int:
        return len(self.inner)

    @property
    def traffic(self) -> Traffic:
        return self.inner.traffic

    @property
    def nodes(self) -> list[str]:
        return self.inner.nodes

    @property
    def placement(self) -> list[str]:
        return self.inner.placement

    @property
    def notes(self) -> list[str]:
        return list(getattr(self.inner, "notes", []))

    def current_placement(self) -> list[str]:
        return self.inner.current_placement()

    def close(self) -> None:
        self.inner.close()

    def local(self, i: int) -> Any:
        local = getattr(self.inner, "local", None)
        if local is None:
            raise TypeError(f"{type(self.inner).__name__} runs its subspaces elsewhere: no local subspace object")
        return local(i)

    def round(self, calls: Sequence[Sequence[Call]]) -> list[list[Any]]:
        self.n += 1
        replies = self.inner.round(calls)
        for i, (cs, rs) in enumerate(zip(calls, replies, strict=True)):
            for c, r in zip(cs, rs, strict=True):
                self.transcript.entries.append(Entry(self.n, i, c, r))
        return replies
