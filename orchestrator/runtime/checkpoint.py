"""Durable run checkpoint: ``DIR/checkpoint.sqlite``, one committed row per executor round.

Every exchange of an iterative strategy with its subspaces is one ``executor.round(calls)``, and the
strategies are deterministic functions of the replies (numpy and torch generators are seeded, nothing
depends on the clock). So a run is fully described by its setup plus the replies of each round, and
``gridcoord run --resume DIR`` re-runs the same strategy against ``CheckpointedExecutor`` which answers
the rounds already done from the file and continues live from the first round that is not there.

What is stored: the run's setup (case, strategy, options, services file, executor, run id) as JSON in
``meta``; per round, a SHA-256 digest of the calls (a canonical walk of their arrays and fields, not a
pickle, so equal calls always hash equal) and the pickled replies. SQLite in WAL mode with
``synchronous=FULL``: a round is on disk once ``round`` returns, and a SIGKILL at any point leaves the
file readable (the last round is either complete or absent).

Replay checks every recorded round's digest against the calls the strategy makes now. On a mismatch
(a different code version, a changed solver) the recorded replies answer different questions: replay
stops there, the rows from that round on are dropped, the run continues live, and the run notes say
so. Everything before the mismatch was verified, so the result is still a correct run of the strategy.

The replies are unpickled: a checkpoint is the orchestrator's own file, as trusted as its run directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import sqlite3
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.runtime.executors import Call, Executor, WrappedExecutor

FILENAME = "checkpoint.sqlite"
FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or not a gridcoord checkpoint; the message names the file."""


# --------------------------------------------------------------------------------------------------
# a canonical digest of the calls


def _feed(h: Any, obj: Any) -> None:
    """Hash ``obj`` by type and value: arrays by dtype, shape and bytes, containers element-wise."""
    if obj is None or isinstance(obj, bool):
        h.update(f"<{obj!r}>".encode())
    elif isinstance(obj, int | np.integer):
        h.update(f"i{int(obj)};".encode())
    elif isinstance(obj, float | np.floating):
        h.update(b"f" + struct.pack("<d", float(obj)))
    elif isinstance(obj, str):
        h.update(f"s{len(obj)}:".encode() + obj.encode())
    elif isinstance(obj, bytes):
        h.update(f"b{len(obj)}:".encode() + obj)
    elif isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        h.update(f"a{a.dtype.str}{a.shape}:".encode() + a.tobytes())
    elif isinstance(obj, list | tuple):
        h.update(f"{type(obj).__name__}{len(obj)}[".encode())
        for x in obj:
            _feed(h, x)
        h.update(b"]")
    elif isinstance(obj, dict):
        h.update(f"d{len(obj)}{{".encode())
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
        h.update(b"}")
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"D{type(obj).__qualname__}(".encode())
        for f in dataclasses.fields(obj):
            _feed(h, f.name)
            _feed(h, getattr(obj, f.name))
        h.update(b")")
    else:  # anything else: its pickle (deterministic for plain objects)
        h.update(f"P{type(obj).__qualname__}:".encode() + pickle.dumps(obj, protocol=5))


def calls_digest(calls: Sequence[Sequence[Any]]) -> str:
    """SHA-256 of one round's calls (what a replayed round is checked against)."""
    h = hashlib.sha256()
    _feed(h, [list(c) for c in calls])
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# the file


class Checkpoint:
    """One run's checkpoint file. ``create`` starts a new one, ``open`` reads an existing one."""

    def __init__(self, path: Path, conn: sqlite3.Connection | None, pending: dict[str, Any] | None = None) -> None:
        self.path = path
        self._conn = conn
        self._pending = pending  # meta of a checkpoint not written yet (``create``: on the first round)

    @staticmethod
    def file(directory: str | Path) -> Path:
        return Path(directory) / FILENAME

    @classmethod
    def create(cls, directory: str | Path, meta: dict[str, Any]) -> Checkpoint:
        """A new checkpoint for a run described by ``meta`` (JSON values). The file is written (replacing
        an old one) with the first round: a run that fails before any round leaves nothing behind."""
        rows = {"format": FORMAT, "created_unix": time.time(), "resumes": 0, "finished": False, **meta}
        return cls(cls.file(directory), None, rows)

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:  # first write of a created checkpoint
            assert self._pending is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            conn = self._connect(self.path)
            with conn:
                conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                conn.execute("CREATE TABLE rounds (n INTEGER PRIMARY KEY, calls_sha256 TEXT NOT NULL, "
                             "replies BLOB NOT NULL, seconds REAL NOT NULL, written_unix REAL NOT NULL)")
                conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                 [(k, json.dumps(v)) for k, v in self._pending.items()])
            self._conn, self._pending = conn, None
        return self._conn

    @property
    def written(self) -> bool:
        """Whether the file exists (a created checkpoint is written with its first round)."""
        return self._conn is not None

    @classmethod
    def open(cls, directory: str | Path) -> Checkpoint:
        """The checkpoint of the run in ``directory``; ``CheckpointError`` naming the file if unusable."""
        path = cls.file(directory)
        if not Path(directory).is_dir():
            raise CheckpointError(f"{directory}: no such run directory")
        if not path.is_file():
            raise CheckpointError(f"{path}: no checkpoint (runs write one unless the strategy is not iterative)")
        try:
            conn = cls._connect(path)
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(ok)
            ck = cls(path, conn)
            meta = ck.meta
            conn.execute("SELECT n, calls_sha256, replies, seconds FROM rounds LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise CheckpointError(f"{path}: not a readable gridcoord checkpoint ({exc})") from None
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"{path}: checkpoint format {meta.get('format')!r}, this gridcoord reads {FORMAT}")
        for key in ("case", "strategy", "executor", "run_id"):
            if key not in meta:
                raise CheckpointError(f"{path}: checkpoint has no {key!r}")
        return ck

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a committed round survives a crash of the machine too
        return conn

    @property
    def meta(self) -> dict[str, Any]:
        if self._pending is not None:
            return dict(self._pending)
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    def set_meta(self, **values: Any) -> None:
        if self._pending is not None:
            self._pending.update(values)
            return
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                  [(k, json.dumps(v)) for k, v in values.items()])

    @property
    def finished(self) -> bool:
        return bool(self.meta.get("finished"))

    def digests(self) -> dict[int, str]:
        """Round number -> calls digest of every recorded round."""
        if self._pending is not None:
            return {}
        return dict(self.conn.execute("SELECT n, calls_sha256 FROM rounds ORDER BY n"))

    def n_rounds(self) -> int:
        if self._pending is not None:
            return 0
        return int(self.conn.execute("SELECT COUNT(*) FROM rounds").fetchone()[0])

    def replies(self, n: int) -> tuple[list[list[Any]], float]:
        """The recorded replies of round ``n`` and how long that round took [s]."""
        row = self.conn.execute("SELECT replies, seconds FROM rounds WHERE n = ?", (n,)).fetchone()
        if row is None:
            raise KeyError(f"{self.path}: no round {n}")
        return pickle.loads(row[0]), float(row[1])

    def record(self, n: int, digest: str, replies: list[list[Any]], seconds: float) -> None:
        """Store round ``n`` durably (committed before this returns)."""
        blob = pickle.dumps(replies, protocol=5)
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO rounds VALUES (?, ?, ?, ?, ?)",
                              (n, digest, blob, seconds, time.time()))

    def truncate(self, first: int) -> None:
        """Drop rounds ``first`` and later (their calls no longer match this run)."""
        with self.conn:
            self.conn.execute("DELETE FROM rounds WHERE n >= ?", (first,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


# --------------------------------------------------------------------------------------------------
# the executor wrapper


class CheckpointedExecutor(WrappedExecutor):
    """Wraps a ``SerialExecutor``/``RayExecutor``: records every round to ``checkpoint`` and, when the
    checkpoint already holds rounds (a resume), answers them from the file after checking their calls.

    ``on_round(n, executor)`` (optional) is called after round ``n`` is recorded (fault injection in tests).
    Traffic, nodes, placement and closing are the wrapped executor's.
    """

    def __init__(self, inner: Executor, checkpoint: Checkpoint | None = None,
                 on_round: Callable[[int, CheckpointedExecutor], None] | None = None) -> None:
        super().__init__(inner)
        self.checkpoint = checkpoint
        self.on_round = on_round
        self._recorded = checkpoint.digests() if checkpoint is not None else {}
        self.replaying = bool(self._recorded)
        self.n = 0
        self.replayed = 0
        self._notes: list[str] = []

    @property
    def notes(self) -> list[str]:
        """What the run notes should say about the replay (nothing for a run that never resumed)."""
        if self.replaying and self.replayed:
            return [*self._notes, f"resumed from {FILENAME}: all {self.replayed} rounds replayed"]
        return list(self._notes)

    def round(self, calls: Sequence[Sequence[Call]]) -> list[list[Any]]:
        self.n += 1
        digest = calls_digest(calls) if self.checkpoint is not None else ""
        if self.replaying:
            replies = self._replay(calls, digest)
            if replies is not None:
                self._after()
                return replies
        t0 = time.perf_counter()
        replies = self.inner.round(calls)
        if self.checkpoint is not None:
            self.checkpoint.record(self.n, digest, replies, time.perf_counter() - t0)
        self._after()
        return replies

    def _replay(self, calls: Sequence[Sequence[Any]], digest: str) -> list[list[Any]] | None:
        assert self.checkpoint is not None
        want = self._recorded.get(self.n)
        if want == digest:
            replies, seconds = self.checkpoint.replies(self.n)
            self.inner.traffic.add_round(calls, replies, seconds)  # the traffic of the original round
            self.replayed += 1
            return replies
        self.replaying = False
        if want is not None:
            note = (f"resume: round {self.n} asks different calls than the checkpoint recorded (digest "
                    f"{digest[:12]} != {want[:12]}): replay stopped, rounds {self.n}.. re-run live")
            print(f"gridcoord: warning: {note}", file=sys.stderr, flush=True)
            self._notes.append(note)
            self.checkpoint.truncate(self.n)
        self._notes.append(f"resumed from {self.checkpoint.path.name}: rounds 1..{self.replayed} replayed, "
                          f"live from round {self.n}")
        return None

    def _after(self) -> None:
        if self.on_round is not None:
            self.on_round(self.n, self)
