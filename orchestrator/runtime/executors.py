"""Where subspaces run: on Ray actors, each hosting one or several subspaces (``RayExecutor``), or
in-process (``SerialExecutor``).

Both implement ``Executor``. A *round* is ``executor.round(calls)``: one message to every subspace
carrying a batch of calls (``core.subspace`` call objects: each applies itself to the subspace), then one
gather. The executor counts rounds, messages and the bytes of what crosses (pickled calls and replies),
so strategies report honest traffic. ``ray.remote`` is applied here, once; the operator packages never
import Ray.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from core.traffic import Traffic

#: a subspace is built on its worker by factory(*args); args may hold ``Shared(i)`` placeholders (shared data)
Factory = tuple[Callable[..., Any], tuple[Any, ...]]
#: one call on a subspace: a callable applied to it on its host (``core.subspace.Evaluate(points)``, ...)
Call = Callable[[Any], Any]


class Executor(Protocol):
    """Where a strategy's subspaces run; every exchange with them is one ``round``."""

    @property
    def traffic(self) -> Traffic: ...

    @property
    def nodes(self) -> list[str]:
        """Node ids the subspaces ran on."""
        ...

    @property
    def placement(self) -> list[str]:
        """The node of each subspace."""
        ...

    def __len__(self) -> int: ...

    def round(self, calls: Sequence[Sequence[Call]]) -> list[list[Any]]:
        """Send calls[i] to subspace i, gather every reply list."""
        ...

    def current_placement(self) -> list[str]:
        """Node id of each subspace now (an actor may have been restarted elsewhere)."""
        ...

    def close(self) -> None: ...


class SubspaceHost:
    """Holds one subspace and runs batches of calls on it (the body of a Ray actor)."""

    def __init__(self, factory: Callable[..., Any], *args: Any) -> None:
        self.subspace = factory(*args)

    def run(self, calls: Sequence[Call]) -> list[Any]:
        return [call(self.subspace) for call in calls]

    def node_id(self) -> str:
        try:
            import ray

            return str(ray.get_runtime_context().get_node_id())
        except Exception:  # noqa: BLE001 - outside Ray there is no node id
            return "local"


class SubspaceCallError(RuntimeError):
    """A subspace call failed on a Ray actor; carries the original type name and message.

    Operator errors (e.g. ``SolveError(message, status)``) need not survive Ray's pickling; this one
    always does, so the orchestrator sees which subspace and which call failed, and why.
    """


@dataclass(frozen=True)
class _Stored:
    """Where an actor finds its factory and arguments: keys of Ray's cluster key-value store (in the GCS).

    An actor whose constructor arguments sit in the object store (a ``ray.put`` reference, or any argument
    large enough for Ray to promote it there) cannot be restarted once that object is lost, and Ray says so at
    error level for every such actor. The GCS store outlives any worker node, so a restarted actor (its node
    went away) always finds them again; the executor deletes the keys when it closes."""

    key: str
    shared: tuple[str, ...]


def _kv() -> Any:
    from ray.experimental import internal_kv

    return internal_kv


def _load(key: str) -> Any:
    """An object the executor stored in the cluster key-value store."""
    from ray import cloudpickle

    blob = _kv()._internal_kv_get(key, namespace=KV_NAMESPACE)
    if blob is None:
        raise RuntimeError(f"subspace data {key!r} is gone from the cluster store (executor closed?)")
    return cloudpickle.loads(blob)


class PortableSubspaceHost(SubspaceHost):
    """One subspace on a Ray actor: failures come back as ``SubspaceCallError`` naming the call.

    ``shared``: shared objects already loaded in this process, by key (the subspaces of one actor load each
    shared object once and share it, as the serial executor's subspaces do)."""

    def __init__(self, stored: _Stored | Callable[..., Any], *direct: Any,
                 shared: dict[str, Any] | None = None) -> None:
        if not isinstance(stored, _Stored):  # built in this process (no cluster store): factory(*args)
            super().__init__(stored, *direct)
            return
        loaded = {} if shared is None else shared

        def load(index: int) -> Any:
            key = stored.shared[index]
            if key not in loaded:
                loaded[key] = _load(key)
            return loaded[key]

        factory, args = _load(stored.key)
        super().__init__(factory, *(load(a.index) if isinstance(a, Shared) else a for a in args))

    def run(self, calls: Sequence[Call]) -> list[Any]:
        out = []
        for call in calls:
            try:
                out.append(call(self.subspace))
            except Exception as exc:  # noqa: BLE001 - re-raised as a picklable error with the same message
                name = getattr(self.subspace, "name", type(self.subspace).__name__)
                raise SubspaceCallError(f"subspace {name!r} {type(call).__name__}: {type(exc).__name__}: {exc}") \
                    from None
        return out


class SubspaceGroupHost:
    """The body of a Ray actor: the subspaces of one group, each built from the cluster store, in one worker
    process; calls run one at a time, in the order they arrive (for stubs of services, one thread per member:
    each member's calls still come one round at a time). A restarted actor rebuilds the whole group."""

    def __init__(self, members: tuple[tuple[int, _Stored], ...]) -> None:
        shared: dict[str, Any] = {}
        self.hosts = {i: PortableSubspaceHost(stored, shared=shared) for i, stored in members}

    def run(self, i: int, calls: Sequence[Call]) -> list[Any]:
        """Subspace i's calls (i: its index in the executor)."""
        return self.hosts[i].run(calls)

    def node_id(self) -> str:
        return next(iter(self.hosts.values())).node_id()


class SerialExecutor:
    """Subspaces in this process, called one after another (tests; the sequential reference)."""

    def __init__(self, factories: Sequence[Factory]) -> None:
        self.hosts = [SubspaceHost(f, *a) for f, a in factories]
        self.traffic = Traffic()
        self.nodes = ["local"]
        self.placement = ["local"] * len(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def round(self, calls: Sequence[Sequence[Call]]) -> list[list[Any]]:
        """Send calls[i] to subspace i, gather every reply list."""
        t0 = time.perf_counter()
        replies = [h.run(c) for h, c in zip(self.hosts, calls, strict=True)]
        self.traffic.add_round(calls, replies, time.perf_counter() - t0)
        return replies

    def local(self, i: int) -> Any:
        """The subspace object itself (serial only; for tests)."""
        return self.hosts[i].subspace

    def current_placement(self) -> list[str]:
        return self.placement

    def close(self) -> None:
        self.hosts = []


_REMOTE_HOST: Any = None


def _remote_host() -> Any:
    global _REMOTE_HOST
    if _REMOTE_HOST is None:
        import ray

        _REMOTE_HOST = ray.remote(SubspaceGroupHost)
    return _REMOTE_HOST


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Start a local Ray (or join ``address``) unless one is running; True when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        # address="local": always a new Ray for this run (never silently join a cluster left running on
        # the machine), dashboard off
        ray.init(address="local", num_cpus=num_cpus or min(2, os.cpu_count() or 1), include_dashboard=False,
                 log_to_driver=False)
    return True


#: a subspace actor that dies (process killed, node removed) is restarted this many times ...
ACTOR_MAX_RESTARTS = 5
#: namespace of the cluster key-value entries that hold the actors' factories and shared data
KV_NAMESPACE = "gridcoord"
#: ... and a call that was in flight on it is re-sent this many times (calls are pure functions of their args)
ACTOR_MAX_TASK_RETRIES = 5
#: how long a round re-sends the calls of an actor that is temporarily unavailable (restarting elsewhere) [s]
ACTOR_RECOVERY_S = 120.0


#: custom node resource that pins an operator's subspace to a node: start the node with
#: ``ray start ... --resources '{"gridcoord:dso1": 1}'`` and dso1's actor runs there (and only there)
PIN_PREFIX = "gridcoord:"
PIN_SHARE = 0.01  # what a pinned actor asks of that resource (several runs may share the node)


def pinned_resources(names: Sequence[str], cluster_resources: dict[str, float]) -> dict[int, str]:
    """Subspace index -> ``gridcoord:<name>`` for every subspace whose resource some node of the cluster offers."""
    return {i: PIN_PREFIX + n for i, n in enumerate(names) if cluster_resources.get(PIN_PREFIX + n, 0.0) > 0}


def actor_groups(n_subspaces: int, pins: dict[int, str], n_actors: int) -> list[list[int]]:
    """Which subspaces share an actor: every pinned subspace alone on its own (it must run where its resource
    is), the others dealt in turn over ``n_actors`` actors (at most one per subspace), so each actor's share
    of a round is about the same. Subspace 0 (the whole-boundary one) is the first of the first group."""
    if n_actors < 1:
        raise ValueError(f"actors: {n_actors} must be at least 1")
    free = [i for i in range(n_subspaces) if i not in pins]
    k = min(n_actors, len(free))
    return [*([free[j::k] for j in range(k)] if k else []), *([i] for i in sorted(pins))]


class RayExecutor:
    """Ray actors created once, each hosting a group of subspaces (:func:`actor_groups`); each round fans
    out (at most a node's CPUs of actors busy at once on it, see :meth:`round`) and gathers (one ``ray.get``
    per subspace).

    ``actors``: how many actors host the subspaces that are not pinned; default two per CPU of the cluster
    (and at most one per subspace). Every actor is a worker process that imports the solver stack (about
    1.5 s of CPU each), so one actor per subspace is slow to start; two per CPU let a node's window
    (:meth:`round`) balance the groups, whose work differs (the TSO's merge costs about seven DSO solves).
    CSSO on ieee118-32x33, 2 cores (``gridcoord run ... --ray-actors N``, one run each): 33 actors 47-48 s
    start-up, 46-49 s coordination; 2 actors 4.6 s and 46.1 s; 4 actors 6.7 s and 38.8 s; 8 actors 11.5 s
    and 40.1 s.

    ``remote``: the subspaces are stubs of services that do the work elsewhere (``ServicesSystem``): by default
    each gets its own actor, and a round sends every call at once (the node's CPUs only wait on the network);
    with fewer actors than stubs, an actor runs its stubs' calls concurrently (one thread per stub).

    ``shared`` objects are stored once and handed to the factories; a factory arg ``Shared(i)`` stands for
    ``shared[i]``.
    """

    def __init__(self, factories: Sequence[Factory], shared: Sequence[Any] = (), address: str | None = None,
                 names: Sequence[str] | None = None, actors: int | None = None, remote: bool = False) -> None:
        import ray
        from ray import cloudpickle

        if actors is not None and actors < 1:  # before Ray is started or anything is stored
            raise ValueError(f"actors: {actors} must be at least 1")
        self.started = ensure_ray(address)
        # every actor's factory and arguments, and the data they share, are stored once in the cluster's
        # key-value store for the executor's lifetime: a restarted actor is rebuilt from them
        prefix = f"executor-{uuid.uuid4().hex}"
        shared_keys = tuple(f"{prefix}/shared/{i}" for i in range(len(shared)))
        own_keys = [f"{prefix}/actor/{i}" for i in range(len(factories))]
        for key, obj in [*zip(shared_keys, shared, strict=True),
                         *zip(own_keys, [(f, tuple(args)) for f, args in factories], strict=True)]:
            _kv()._internal_kv_put(key, cloudpickle.dumps(obj), namespace=KV_NAMESPACE)
        self._keys = [*shared_keys, *own_keys]
        # SPREAD: on a multi-node cluster the subspaces go to different nodes where they fit. The CPU share
        # is sized so that every actor fits on the smallest node: when a node goes away, its actors are
        # restarted on the nodes left (a share of the whole cluster would leave them pending forever).
        # max_restarts: a dead actor (killed process, lost node) is recreated, its factory runs again in
        # __init__; max_task_retries: its pending calls are re-sent, which is safe as they are pure.
        per_node = [float(n["Resources"].get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
        smallest = min([c for c in per_node if c > 0] or [1.0])
        #: subspace index -> the node resource that pins it (operators that must run on a given node)
        self.pins = pinned_resources(names or [], ray.cluster_resources())
        #: the subspaces of each actor (indices into factories)
        default = len(factories) if remote else max(1, int(2 * sum(per_node)))
        self.groups = actor_groups(len(factories), self.pins, default if actors is None else actors)
        self.remote = remote
        opts = {"num_cpus": min(1.0, smallest / max(1, len(self.groups))), "scheduling_strategy": "SPREAD",
                "max_restarts": ACTOR_MAX_RESTARTS, "max_task_retries": ACTOR_MAX_TASK_RETRIES}

        host = _remote_host()
        # an actor of stubs only waits on its services: it runs every one of its subspaces' calls at once
        # (threads), so grouping stubs on fewer actors (``actors``) does not queue one operator behind another
        self.hosts = [host.options(**opts, **({"resources": {self.pins[g[0]]: PIN_SHARE}} if g[0] in self.pins
                                              else {}), **({"max_concurrency": len(g)} if remote else {}))
                      .remote(tuple((i, _Stored(own_keys[i], shared_keys)) for i in g)) for g in self.groups]
        #: the actor (index into hosts) of each subspace
        self._host_of = [0] * len(factories)
        for h, g in enumerate(self.groups):
            for i in g:
                self._host_of[i] = h
        #: node id of each subspace's actor, in subspace order (which subspace ran where)
        self.placement = self._host_nodes(ray.get([a.node_id.remote() for a in self.hosts]))
        self.nodes = sorted(set(self.placement))
        #: node id -> its CPUs: how many of a round's calls may run there at once
        self._cpus = {str(n["NodeID"]): max(1, int(float(n["Resources"].get("CPU", 1.0)))) for n in ray.nodes()
                      if n.get("Alive")}
        self.traffic = Traffic()

    @property
    def actors(self) -> list[Any]:
        """The actor of each subspace, in subspace order (an actor appears once per subspace it hosts)."""
        return [self.hosts[h] for h in self._host_of]

    def __len__(self) -> int:
        return len(self._host_of)

    def _host_nodes(self, host_nodes: Sequence[Any]) -> list[str]:
        """Each subspace's node, from each actor's."""
        return [str(host_nodes[h]) for h in self._host_of]

    def round(self, calls: Sequence[Sequence[Call]]) -> list[list[Any]]:
        """Every subspace's calls, with at most as many actors busy at once on a node as it has CPUs (all at
        once for ``remote`` subspaces). An actor runs one subspace's calls at a time; a node's free CPU goes
        to the idle actor with the most subspaces still waiting (the first group's whole-boundary subspace 0
        starts first), so the actors' shares finish together. 33 solver processes sharing 2 cores took 40 %
        longer than 2 at a time (32 DSO evaluations of ieee118-32x33: 9.3 s on 16 actors, 6.7 s on 2, 12.8 s on
        1). Sending an actor all its subspaces' calls at once instead left the last actors to start waiting
        for a whole share: CSSO's last merge round on ieee118-32x33 (the TSO's merge and report, 32 DSO
        reports; 4 actors on 2 cores) took 18.2-20.1 s that way, against about 14.7 s of work per core."""
        import ray

        t0 = time.perf_counter()
        if len(calls) != len(self):
            raise ValueError(f"round: {len(calls)} call lists for {len(self)} subspaces")
        refs: list[Any] = [None] * len(calls)
        waiting: dict[int, list[int]] = {}  # actor -> its subspaces not yet sent, in subspace order
        for i in range(len(calls)):
            waiting.setdefault(self._host_of[i], []).append(i)
        busy: dict[str, int] = {}  # node -> its actors with a call in flight
        flying: dict[Any, int] = {}  # ref -> the actor that runs it
        while waiting or flying:
            idle = sorted((h for h in waiting if self.remote or h not in flying.values()),
                          key=lambda h: (-len(waiting[h]), h))
            for h in idle:
                node = self.placement[waiting[h][0]]
                if self.remote or busy.get(node, 0) < self._cpus.get(node, 1):
                    i = waiting[h].pop(0)
                    if not waiting[h]:
                        del waiting[h]
                    refs[i] = self._send(i, calls[i])
                    flying[refs[i]] = h
                    busy[node] = busy.get(node, 0) + 1
            if self.remote and waiting:  # a remote actor runs its stubs' calls concurrently: send them all
                continue
            if not flying:
                break
            done, _ = ray.wait(list(flying), num_returns=1)
            for ref in done:
                h = flying.pop(ref)
                busy[self.placement[self.groups[h][0]]] -= 1
        replies = [self._get(i, ref, partial(self._send, i, calls[i])) for i, ref in enumerate(refs)]
        self.traffic.add_round(calls, replies, time.perf_counter() - t0)
        return replies

    def _send(self, i: int, calls: Sequence[Call]) -> Any:
        return self.hosts[self._host_of[i]].run.remote(i, calls)

    def _get(self, i: int, ref: Any, resend: Callable[[], Any]) -> Any:
        """Subspace i's reply. An actor that is temporarily unreachable (its node just went away, it is
        being restarted) is asked again (``resend()``), for up to ``ACTOR_RECOVERY_S``: calls are pure
        functions of their arguments, so a repeat cannot double-count. A dead actor (restarts exhausted) is named."""
        import ray

        end, delay = time.monotonic() + ACTOR_RECOVERY_S, 0.2
        while True:
            try:
                return ray.get(ref)
            except ray.exceptions.ActorUnavailableError as exc:
                if time.monotonic() > end:
                    raise SubspaceCallError(f"subspace {i} actor unavailable for {ACTOR_RECOVERY_S:g} s: "
                                            f"{str(exc).splitlines()[0]}") from None
                time.sleep(delay)
                delay = min(2.0 * delay, 2.0)
                ref = resend()
            except ray.exceptions.RayActorError as exc:  # restarts exhausted: name the subspace
                raise SubspaceCallError(f"subspace {i} actor died and could not be restarted "
                                        f"({ACTOR_MAX_RESTARTS} restarts): {type(exc).__name__}: "
                                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from None

    def current_placement(self) -> list[str]:
        """Node id of each subspace's actor now; updates ``placement`` and adds to ``nodes`` (after a
        restart an actor may live on another node)."""
        refs = [a.node_id.remote() for a in self.hosts]
        # an actor may be restarting right now (a node just went away): ride it out as a round does
        self.placement = self._host_nodes([self._get(g[0], ref, a.node_id.remote)
                                           for g, a, ref in zip(self.groups, self.hosts, refs, strict=True)])
        self.nodes = sorted(set(self.nodes) | set(self.placement))
        return self.placement

    def close(self) -> None:
        import ray

        for a in self.hosts:
            ray.kill(a)
        self.hosts, self._host_of = [], []
        if ray.is_initialized():
            for key in self._keys:
                _kv()._internal_kv_del(key, namespace=KV_NAMESPACE)
        self._keys = []
        if self.started:
            ray.shutdown()


class WrappedExecutor:
    """An executor around another (checkpointing, recording): everything but ``round`` is the wrapped one's."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner

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

    def current_placement(self) -> list[str]:
        return self.inner.current_placement()

    def close(self) -> None:
        self.inner.close()

    def local(self, i: int) -> Any:
        """The subspace object itself (in-process executor only; for tests)."""
        local = getattr(self.inner, "local", None)
        if local is None:
            raise TypeError(f"{type(self.inner).__name__} runs its subspaces elsewhere: no local subspace object")
        return local(i)


@dataclass(frozen=True)
class Shared:
    """Placeholder in a factory's args for the ``index``-th shared (``ray.put``) object."""

    index: int


def make_executor(kind: str, factories: Sequence[Factory], shared: Sequence[Any] = (),
                  address: str | None = None, names: Sequence[str] | None = None,
                  actors: int | None = None, remote: bool = False) -> Executor:
    """``kind`` = "ray" or "serial"; serial resolves ``Shared`` placeholders in-process. ``names``: the
    subspaces' operator ids (Ray pins a subspace to a node that offers the ``gridcoord:<id>`` resource);
    ``actors``: Ray actors for the subspaces that are not pinned (default: two per CPU of the cluster, or one
    per subspace when they are ``remote``: stubs of services that do the work elsewhere)."""
    if kind == "ray":
        return RayExecutor(factories, shared, address, names, actors, remote)
    if kind == "serial":
        resolved = [(f, tuple(shared[a.index] if isinstance(a, Shared) else a for a in args))
                    for f, args in factories]
        return SerialExecutor(resolved)
    raise ValueError(f"executor kind {kind!r} must be 'ray' or 'serial'")
