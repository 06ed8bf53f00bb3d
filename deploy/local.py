"""Run a coordination with every operator as its own OS process on loopback, then stop them.

    python deploy/local.py --case ieee30-3x33 --strategy admm --out runs/services-admm

Starts `gridcoord serve` for the TSO, every DSO and every EV aggregator of the case (free ports,
a services file in the output directory), waits until each reports SERVING (grpc.health.v1), runs
`gridcoord run --services FILE`, and stops the operators with SIGTERM (they drain in-flight calls).
Every call runs over mutual TLS: a trial CA and the certificates are created in OUT/operators/tls and the
security-event logs are OUT/operators/security-ID.jsonl; `--insecure` runs plaintext instead.

    python deploy/local.py --strategy admm --privacy dp --epsilon 1 --max-rounds 20 --out runs/services-dp

starts every DSO with the Gaussian mechanism (`gridcoord serve dso --privacy dp`, the budget planned for the
run's rounds) and runs the coordination with the same settings, so the run's accounting matches what the
DSOs released.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.cli.launch import LocalDeployment
from orchestrator.cli.main import DP_DEFAULT_ROUNDS, add_privacy_flags
from orchestrator.cli.main import main as gridcoord


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", default="ieee30-3x33")
    p.add_argument("--strategy", default="csso", choices=("csso", "admm", "gradient", "dual"))
    p.add_argument("--out", default="runs/services")
    p.add_argument("--no-ac-check", action="store_true")
    p.add_argument("--insecure", action="store_true", help="plaintext gRPC instead of mTLS (local development)")
    p.add_argument("--max-rounds", type=int, default=None, help="coordination rounds (default: the strategy's own; "
                   f"with --privacy dp: {DP_DEFAULT_ROUNDS}, the rounds the DSOs' budget is planned for)")
    add_privacy_flags(p, dp_rounds=False)
    args = p.parse_args()
    out = Path(args.out)
    rounds: list[str] = [] if args.max_rounds is None else ["--max-rounds", str(args.max_rounds)]
    dp: list[str] = []
    if args.privacy == "dp":
        if args.epsilon is None:
            p.error("--privacy dp: give --epsilon E (the run's total, > 0)")
        dp = ["--privacy", "dp", "--epsilon", repr(args.epsilon), "--delta", repr(args.delta), "--dp-seed",
              str(args.dp_seed)] + ([] if args.dp_alpha_mw is None else ["--dp-alpha-mw", repr(args.dp_alpha_mw)])
    elif args.epsilon is not None or args.dp_alpha_mw is not None:
        p.error("--epsilon and --dp-alpha-mw need --privacy dp")
    # the DSOs plan their budget for the run's rounds (the run stops there under DP)
    dso_args = (*dp, "--dp-rounds", str(args.max_rounds or DP_DEFAULT_ROUNDS)) if dp else ()
    with LocalDeployment(args.case, out / "operators", ac_check=not args.no_ac_check, insecure=args.insecure,
                         dso_args=dso_args) as dep:
        mode = "plaintext" if args.insecure else f"mTLS, certificates in {dep.tls_dir}"
        print(f"{len(dep.procs)} operators SERVING ({mode}): {dep.services_file}", file=sys.stderr)
        run_args = ["run", "--case", args.case, "--strategy", args.strategy, "--services", str(dep.services_file),
                    "--out", str(out), *rounds, *dp] + (["--insecure"] if args.insecure else
                                                        ["--tls-dir", str(dep.tls_dir)])
        code = gridcoord(run_args + (["--no-ac-check"] if args.no_ac_check else []))
    return code


if __name__ == "__main__":
    sys.exit(main())
