"""gridcoord's wire layer: generated gRPC/protobuf code (``gridcoord.v1``), conversions between
protobuf messages and plain data (``gridcoord.convert``), and RPC helpers (``gridcoord.rpc``).

Only service modules and the orchestrator's client import this package; model code never does.
"""
