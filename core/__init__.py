"""The shared core: what every operator (TSO, DSO, EV aggregator, TNO) and the orchestrator use, and
nothing that belongs to one of them.

- ``case``, ``profiles``, ``data/``, ``cases/``: the case spec (YAML, validated on load) and the bundled
  profiles and cases; each operator turns its own part of a case into numbers in its own package.
- ``subspace``: the subspace contract (``Subspace``, the typed calls, ``Evaluation``/``Proposal``) and
  ``BoundarySubspace``, the base of the TSO and DSO subspaces; ``icnn``: surrogate weights and their LP
  embedding; ``solver``: the solver policy; ``errors``: ``SolveError``; ``windows``: plug-in windows.
- ``rpc``, ``service``, ``convert``, ``tls``, ``peers``: the RPC discipline, the subspace servicer, the
  protobuf <-> domain conversions, mTLS and authorization, the services file; ``traffic``: what crosses.

It imports no operator package and never the orchestrator (``tests/test_layout.py``).
"""
