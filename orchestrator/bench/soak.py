"""``gridcoord bench --soak N``: the fault-tolerance tests run N times in a row (a soak, not a test).

Each repetition is a fresh ``python -m pytest tests/test_fault_tolerance.py`` process from the checkout
(the tests are not installed with the package), so a race that fails one run in twenty shows up as a
count, not as a lucky green CI run. Prints one line per run and the totals; ``--out DIR`` also writes
``DIR/soak.json``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = "tests/test_fault_tolerance.py"


def soak(repeat: int, tests: str = TESTS, out: str | None = None) -> tuple[str, bool]:
    """Run ``tests`` ``repeat`` times; (report, every run passed)."""
    if repeat < 1:
        raise ValueError(f"--soak {repeat}: give the number of repetitions, >= 1")
    if not (ROOT / tests).is_file():
        raise FileNotFoundError(f"--soak: {ROOT / tests} not found (the soak runs from a source checkout)")
    runs: list[dict[str, object]] = []
    passes = 0
    lines = [f"gridcoord bench --soak — {tests}, {repeat} runs in a row, one pytest process each"]
    for i in range(1, repeat + 1):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tests], cwd=ROOT,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        tail = (proc.stdout.strip().splitlines() or [""])[-1]
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|error|errors)", tail)}
        passes += counts.get("passed", 0)
        failed = [line.split(" - ")[0] for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        run: dict[str, object] = {"run": i, "returncode": proc.returncode, "wall_s": wall, "counts": counts,
                                  "failed": failed}
        lines.append(f"run {i:3d}: {'ok    ' if proc.returncode == 0 else 'FAILED'} {wall:7.1f} s  {tail}"
                     + (f"  [{', '.join(failed)}]" if failed else ""))
        if proc.returncode != 0 and out is not None:  # a failure is kept whole, for whoever reads the soak
            Path(out).mkdir(parents=True, exist_ok=True)
            log = Path(out) / f"run-{i:03d}.log"
            log.write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
            run["log"] = str(log)
            lines[-1] += f"  (output: {log})"
        runs.append(run)
        print(lines[-1], file=sys.stderr, flush=True)
    bad = [r for r in runs if r["returncode"] != 0]
    lines.append(f"soak: {repeat - len(bad)}/{repeat} runs passed, {len(bad)} failed; {passes} test passes in total")
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "soak.json").write_text(json.dumps({"tests": tests, "repeat": repeat, "runs": runs,
                                                          "failed_runs": len(bad)}, indent=2) + "\n")
        lines.append(f"wrote {Path(out) / 'soak.json'}")
    return "\n".join(lines), not bad
