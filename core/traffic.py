"""One traffic counter for every place where something crosses between the orchestrator and the
operators: executor rounds (pickled calls and replies), gRPC calls (serialized messages), and the
one-shot exchanges of ``isolated`` and ``centralized``.

A *round* is one exchange in which the orchestrator sends to every subspace and gathers their answers;
rounds, messages, bytes and subspace solves are what a wide-area deployment pays for.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass
class Traffic:
    rounds: int = 0
    messages: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    subspace_solves: int = 0
    #: calls sent again after a transient failure (gRPC UNAVAILABLE, an operator coming back)
    retries: int = 0
    #: wall seconds of each round
    round_s: list[float] = field(default_factory=list)
    #: ``Message.field`` of every response field that crossed (the privacy audit of what leaves an operator)
    fields_received: set[str] = field(default_factory=set)

    @property
    def bytes(self) -> int:
        """Bytes in both directions."""
        return self.bytes_sent + self.bytes_received

    def add_round(self, sent: Sequence[Sequence[object]], replies: Sequence[object], seconds: float) -> None:
        """One executor round: a message to and from every subspace, sized as pickled; ``sent[i]`` is the batch
        of calls to subspace i, each costing ``call.solves`` solves (one unless it says otherwise)."""
        self.rounds += 1
        self.messages += len(sent) + len(replies)
        self.subspace_solves += sum(int(getattr(c, "solves", 1)) for batch in sent for c in batch)
        self.bytes_sent += sum(len(pickle.dumps(m)) for m in sent)
        self.bytes_received += sum(len(pickle.dumps(r)) for r in replies)
        self.round_s.append(seconds)

    def add_call(self, sent_bytes: int, received_bytes: int, fields: Iterable[str] = ()) -> None:
        """One request/response pair on the wire."""
        self.messages += 2
        self.bytes_sent += sent_bytes
        self.bytes_received += received_bytes
        self.fields_received.update(fields)

    def add_exchange(self, n_messages: int, n_bytes: int) -> None:
        """Messages of a one-shot exchange (forecasts up, prices down; a central planner's uploads)."""
        self.messages += n_messages
        self.bytes_sent += n_bytes
