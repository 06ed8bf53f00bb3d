"""Run a coordination with every operator as its own OS process on loopback, then stop them.

    python deploy/local.py --case ieee30-3x33 --strategy admm --out runs/services-admm

Starts `gridcoord serve` for the TSO, every DSO and every EV aggregator of the case (free ports,
a services file in the output directory), waits until each reports SERVING (grpc.health.v1), runs
`gridcoord run --services FILE`, and stops the operators with SIGTERM (they drain in-flight calls).
Every call runs over mutual TLS: a trial CA and the certificates are created in OUT/operators/tls and the
security-event logs are OUT/operators/security-ID.jsonl; `--insecure` runs plaintext instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.cli.launch import LocalDeployment
from orchestrator.cli.main import main as gridcoord


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", default="ieee30-3x33")
    p.add_argument("--strategy", default="csso", choices=("csso", "admm", "dual"))
    p.add_argument("--out", default="runs/services")
    p.add_argument("--no-ac-check", action="store_true")
    p.add_argument("--insecure", action="store_true", help="plaintext gRPC instead of mTLS (local development)")
    args = p.parse_args()
    out = Path(args.out)
    with LocalDeployment(args.case, out / "operators", ac_check=not args.no_ac_check, insecure=args.insecure) as dep:
        mode = "plaintext" if args.insecure else f"mTLS, certificates in {dep.tls_dir}"
        print(f"{len(dep.procs)} operators SERVING ({mode}): {dep.services_file}", file=sys.stderr)
        run_args = ["run", "--case", args.case, "--strategy", args.strategy, "--services", str(dep.services_file),
                    "--out", str(out)] + (["--insecure"] if args.insecure else ["--tls-dir", str(dep.tls_dir)])
        code = gridcoord(run_args + (["--no-ac-check"] if args.no_ac_check else []))
    return code


if __name__ == "__main__":
    sys.exit(main())
