"""gridcoord's shared layer, used by every operator service and the orchestrator: the generated
gRPC/protobuf code (``gridcoord.v1``), conversions between protobuf messages and plain data
(``gridcoord.convert``), RPC discipline (``gridcoord.rpc``, ``gridcoord.service``), the solver policy
(``gridcoord.solver``) and the LP embedding of neighbours' surrogates (``gridcoord.icnn``).

Model code never imports the protobuf modules; only service modules and the orchestrator's client do.
"""
