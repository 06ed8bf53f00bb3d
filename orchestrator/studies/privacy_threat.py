"""The threat model of a coordination: which fields each party receives, per strategy, generated from the
proto descriptors (``gridcoord.v1``) and the RPCs each strategy declares (``Strategy.rpcs``).

Parties (honest-but-curious: they follow the protocol and try to infer from what they receive):
``orchestrator`` (every request it builds and every reply), ``tso`` (the requests the orchestrator sends
it), ``other-dso`` (DSO j: the requests it receives, some of which carry DSO k's data), ``aggregator`` (its
DSO's envelope and dispatch calls; the same in every strategy), and a passive ``link-observer`` of a
compromised orchestrator <-> DSO k link (plaintext ``--insecure``, or an endpoint whose TLS key leaked):
the requests to DSO k and its replies.

Every leaf field of the messages is looked up in ``REVEALS`` (what the field tells about DSO k); a field
added to a proto without an entry there fails ``tests/test_privacy.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor

from gridcoord.v1 import aggregator_pb2, dso_pb2, tso_pb2

#: what a field tells about DSO k (the victim); "-" = nothing of DSO k
REVEALS: dict[str, str] = {
    "RunKey.run_id": "-", "RunKey.round": "-",
    "EvaluateRequest.boundary_mw": "DSO k's imports (TSO: every DSO's; start: DSO k's forecast = net load)",
    "EvaluateResponse.cost_usd": "DSO k's cost at the point (value of its cost curve)",
    "EvaluateResponse.sensitivity_usd_per_mwh": "DSO k's marginal cost per period (slope of its cost curve)",
    "EvaluateResponse.penalty_usd": "how far the point is outside DSO k's feasible set [$]",
    "EvaluateResponse.mismatch_mw": "how far the point is outside DSO k's feasible set [MW]",
    "EvaluateResponse.dt_h": "-",
    "EvaluateResponse.hourly_cost_usd": "- (TSO only)",
    "OptimizeRequest.others": "the TSO's response surface, fitted on every DSO's points",
    "SurrogateTerm.operator_id": "-", "SurrogateTerm.index": "-",
    "IcnnWeights.n_inputs": "-", "IcnnWeights.n_hidden": "-",
    "IcnnWeights.w": "TSO surface (fitted on all DSOs' imports)", "IcnnWeights.b": "TSO surface",
    "IcnnWeights.v": "TSO surface", "IcnnWeights.a": "TSO surface (its prices at the centre)",
    "IcnnWeights.c": "TSO surface",
    "OptimizeRequest.center_mw": "the whole boundary: every DSO's imports at the centre",
    "OptimizeRequest.move_mw": "trust radius per DSO (how its proposals were used)",
    "OptimizeResponse.x_mw": "DSO k's proposed imports (its best response)",
    "OptimizeResponse.predicted_usd": "DSO k's cost + surface at its proposal",
    "OptimizeResponse.ok": "-",
    "OptimizeResponse.cost_usd": "DSO k's exact cost at its proposal",
    "OptimizeResponse.sensitivity_usd_per_mwh": "DSO k's marginal cost at its proposal",
    "RespondRequest.price_usd_per_mwh": "price sent to DSO k (TSO: prices of all DSOs)",
    "ProxRequest.target_mw": "consensus target (mixes DSO k's earlier imports)",
    "ProxRequest.rho_usd_per_mw2": "-",
    "BoundaryResponse.x_mw": "DSO k's import response (KKT: its marginal cost = -price or rho (target - x))",
    "BoundaryResponse.cost_usd": "DSO k's own cost at its response",
    "ForecastRequest.key": "-",
    "ForecastResponse.p_import_mw": "DSO k's net load (loads - PV - wind): fully revealed",
    "ForecastResponse.dp_epsilon": "whether and how DSO k protects its replies (public settings)",
    "ForecastResponse.dp_delta": "whether and how DSO k protects its replies (public settings)",
    "ForecastResponse.dp_releases": "whether and how DSO k protects its replies (public settings)",
    "DsoReportRequest.boundary_mw": "DSO k's final import",
    "DsoReportRequest.price_usd_per_mwh": "price paid by DSO k",
    "DsoPoints.n_points": "-", "DsoPoints.points_mw": "DSO k's proposed imports",
    "DsoPoints.costs_usd": "DSO k's exact costs at them",
    "MergeResponse.x_mw": "merged imports of every DSO", "MergeResponse.theta": "which of DSO k's points the TSO took",
    "MergeResponse.bound_usd": "system cost bound (incl. DSO k's costs)",
    "TsoReportRequest.boundary_mw": "every DSO's final import",
    "MergeResponse.evaluation": "TSO cost and prices at the merge (KKT: DSO k's marginal cost at an optimum)",
    # the TSO's own replies, as the orchestrator receives them
    "tso:EvaluateResponse.sensitivity_usd_per_mwh": "TSO price at DSO k's bus (KKT: DSO k's marginal cost at an "
                                                     "optimum)",
    "tso:EvaluateResponse.cost_usd": "-", "tso:EvaluateResponse.penalty_usd": "-",
    "tso:EvaluateResponse.mismatch_mw": "-", "tso:EvaluateResponse.hourly_cost_usd": "-",
    "tso:BoundaryResponse.x_mw": "- (the TSO's own wish)", "tso:BoundaryResponse.cost_usd": "-",
    "tso:TsoReport.price_dso_usd_per_mwh": "final price at DSO k's bus (KKT: its marginal cost)",
    "tso:TsoReport.*": "- (the TSO's own aggregates)",
    "DsoReport.*": "DSO k's whole dispatch (end-of-run publication, outside the coordination)",
    "EnvelopeRequest.key": "-",
    "Envelope.*": "- (the aggregator's own fleet)",
    "DispatchRequest.p_ch_mw": "EV charging the DSO dispatched (its EV energy)",
    "DispatchRequest.p_dis_mw": "EV discharging the DSO dispatched",
    "DispatchRequest.dlmp_usd_per_mwh": "DSO k's nodal prices (its feeder's congestion and losses)",
    "DispatchRequest.alloc_share": "how DSO k spread EVs over its stations",
    "DispatchRequest.redispatched": "- (whether the entries follow a re-dispatch: the aggregator's own events)",
    "DispatchResponse.*": "- (the aggregator's own outcome)",
}

#: message fields read as one leaf (their content is described as a whole)
ONE_LEAF = {"MergeResponse.evaluation"}
#: messages listed as a whole (the end-of-run publication of a DSO's dispatch)
WHOLE_MESSAGES = {"DsoReport"}
#: RPCs each party's view is made of: (service, rpc) -> which of its messages the party receives
ROLE_SERVICE = {"tso": tso_pb2.DESCRIPTOR.services_by_name["TsoService"],
                "dso": dso_pb2.DESCRIPTOR.services_by_name["DsoService"]}
AGGREGATOR_RPCS = ("GetEnvelope", "Dispatch")  # the DSO calls its aggregator (never the orchestrator)
PARTIES = ("orchestrator", "tso", "other-dso", "aggregator", "link-observer")
#: request fields of a DSO's RPC that carry another DSO's data
OTHER_DSO_FIELDS = {"OptimizeRequest.center_mw", *(f"IcnnWeights.{x}" for x in "wbvac")}


@dataclass(frozen=True)
class FieldView:
    rpc: str  # "tso.Evaluate", "dso.Optimize", ...
    direction: str  # "request" | "response"
    field: str  # "EvaluateRequest.boundary_mw"

    @property
    def reveals(self) -> str:
        return reveals(self.field, self.rpc.split(".")[0])


def reveals(name: str, role: str = "dso") -> str:
    """What a field of a ``role`` RPC tells about DSO k; ``KeyError`` for a field the table does not cover."""
    wildcard = name.split(".")[0] + ".*"
    for key in (f"{role}:{name}", name, f"{role}:{wildcard}", wildcard):
        if key in REVEALS:
            return REVEALS[key]
    raise KeyError(f"privacy threat model: field {name!r} has no entry in REVEALS (what does it tell about a DSO?)")


def leaf_fields(desc: Descriptor) -> Iterator[str]:
    """Every leaf field of a message as ``Message.field`` (message-typed fields expanded as their own message's
    fields, maps and ``ONE_LEAF`` messages as one leaf, the RunKey left out)."""
    for f in desc.fields:
        name = f"{desc.name}.{f.name}"
        if (f.type != FieldDescriptor.TYPE_MESSAGE or f.message_type.GetOptions().map_entry
                or name in ONE_LEAF):
            yield name
        elif f.message_type.name != "RunKey":
            yield from leaf_fields(f.message_type)


def _fields(service: ServiceDescriptor, rpc: str, direction: str) -> list[str]:
    method = service.methods_by_name[rpc]
    desc = method.input_type if direction == "request" else method.output_type
    if desc.name in WHOLE_MESSAGES:
        return [f"{desc.name}.*"]
    return list(leaf_fields(desc))


def party_views(rpcs: dict[str, tuple[str, ...]]) -> dict[str, list[FieldView]]:
    """party -> the fields it receives, for a strategy that calls ``rpcs`` (role -> RPC names)."""
    views: dict[str, list[FieldView]] = {p: [] for p in PARTIES}
    for role, names in rpcs.items():
        service = ROLE_SERVICE[role]
        for rpc in names:
            req, resp = _fields(service, rpc, "request"), _fields(service, rpc, "response")
            views["orchestrator"] += [FieldView(f"{role}.{rpc}", "response", f) for f in resp]
            if role == "tso":
                views["tso"] += [FieldView(f"tso.{rpc}", "request", f) for f in req]
            else:
                views["link-observer"] += [FieldView(f"dso.{rpc}", d, f) for d, fs in (("request", req),
                                                                                      ("response", resp)) for f in fs]
                views["other-dso"] += [FieldView(f"dso.{rpc}", "request", f) for f in req if f in OTHER_DSO_FIELDS]
    agg = aggregator_pb2.DESCRIPTOR.services_by_name["AggregatorService"]
    for rpc in AGGREGATOR_RPCS:
        views["aggregator"] += [FieldView(f"aggregator.{rpc}", "request", f) for f in _fields(agg, rpc, "request")]
    return views


def threat_table(strategies: dict[str, Any]) -> list[dict[str, str]]:
    """One row per (strategy, party, field) that tells something about DSO k (``reveals`` != "-")."""
    rows = []
    for name, cls in strategies.items():
        rpcs = getattr(cls, "rpcs", None)
        if not rpcs:
            continue
        for party, fields in party_views(rpcs).items():
            for v in fields:
                if not v.reveals.startswith("-"):
                    rows.append({"strategy": name, "party": party, "rpc": v.rpc, "direction": v.direction,
                                 "field": v.field, "reveals": v.reveals})
    return rows


def threat_markdown(strategies: dict[str, Any]) -> str:
    """The threat-model table (README "Privacy"): per strategy and party, the fields about DSO k it receives."""
    lines = ["| strategy | party | fields received that carry DSO k's data (RPC: message.field) |", "|---|---|---|"]
    grouped: dict[tuple[str, str], list[str]] = {}
    for r in threat_table(strategies):
        grouped.setdefault((r["strategy"], r["party"]), []).append(f"{r['rpc'].split('.')[1]}: {r['field']}")
    for name, cls in strategies.items():
        if not getattr(cls, "rpcs", None):
            continue
        for party in PARTIES:
            fields = grouped.get((name, party), [])
            lines.append(f"| {name} | {party} | {', '.join(dict.fromkeys(fields)) or 'nothing of DSO k'} |")
    return "\n".join(lines) + "\n"
