"""The generated wire code is fresh, and every field of every message carries a unit/sign comment."""

from __future__ import annotations

import importlib.util
import re
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# protos/generate.py loaded from its file: putting protos/ on sys.path would make protos/gridcoord (the
# .proto sources) shadow the generated package gridcoord for every later import
_spec = importlib.util.spec_from_file_location("protos_generate", ROOT / "protos" / "generate.py")
assert _spec is not None and _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)


@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None, reason="grpcio-tools not installed")
def test_generated_code_is_fresh() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.relative_to(Path(tmp) / "gridcoord" / "v1"): p.read_bytes() for p in generate.generate(Path(tmp))}
    stored = {p.relative_to(generate.OUT): p.read_bytes() for p in generate.OUT.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert sorted(stored) == sorted(fresh), "run `python protos/generate.py`"
    stale = [str(k) for k in fresh if fresh[k] != stored[k]]
    assert not stale, f"stale generated code {stale}: run `python protos/generate.py`"


def test_every_field_is_commented() -> None:
    field = re.compile(r"^\s*(repeated\s+|map<[^>]+>\s+)?[\w.]+\s+\w+\s*=\s*\d+;(.*)$")
    missing = []
    for proto in generate.proto_files():
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            m = field.match(line)
            if m and "//" not in m.group(2) and not lines[i - 1].strip().startswith("//"):
                # message-typed fields named after their type are self-describing (RunKey key = 1)
                if not re.match(r"^\s*(repeated\s+)?[A-Z]\w*\s+\w+\s*=", line):
                    missing.append(f"{proto.name}:{i + 1}: {line.strip()}")
    assert not missing, "fields without a unit/sign comment:\n" + "\n".join(missing)
