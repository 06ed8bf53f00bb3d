"""Studies: each paper's experiment as ``gridcoord study NAME`` (and ``gridcoord plan storage``).

A study runs its scenarios on a bundled case and writes the study contract (README "Studies"):
``DIR/study.json`` ``{"study", "case", "scenarios": {SCENARIO: {METRIC: value}}, "notes": [...], ...}``,
``DIR/table.md`` (the paper-style table, the paper's own figures in a column beside ours), one run
directory per scenario where a run exists (the run contract), and PNG plots.

Each study is a module here with ``add_arguments(parser)`` (its flags) and ``run(args) -> StudyResult``;
``STUDIES`` maps the study name to its module (``PLANS`` the same for ``gridcoord plan``), so that the
command line imports a study only when it runs.
"""

from __future__ import annotations

#: study name -> module (``gridcoord study NAME``)
STUDIES: dict[str, str] = {
    "t-d-coordination": "orchestrator.studies.t_d_coordination",
    "scheduled-charging": "orchestrator.studies.scheduled_charging",
    "privacy": "orchestrator.studies.privacy",
    "transport-coupling": "orchestrator.studies.transport_coupling",
    "chance-constrained": "orchestrator.studies.chance_constrained",
}

#: plan name -> module (``gridcoord plan NAME``)
PLANS: dict[str, str] = {
    "storage": "orchestrator.studies.storage_plan",
}
