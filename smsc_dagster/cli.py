"""The ``smsc-dagster`` command: ``demo``, ``dev`` and ``simulator``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from .demo import DEMO_SEED, DEMO_SIM_PORT

    sim_port_help = (
        f"the simulator's port (default {DEMO_SIM_PORT}; give demo and dev the same one: the store remembers it)"
    )

    parser = argparse.ArgumentParser(prog="smsc-dagster", description="SMSC.kz history as Dagster assets")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the pipeline on the built-in simulator and print the results")
    demo.add_argument("--days", type=int, default=14, help="how many recent days to materialize (default 14)")
    seed_help = f"seed of the simulated account (default {DEMO_SEED})"
    demo.add_argument("--seed", type=int, default=DEMO_SEED, help=seed_help)
    demo.add_argument("--data-dir", default=None, help="where to write Parquet and DuckDB (default ./data)")
    demo.add_argument("--sim-port", type=int, default=DEMO_SIM_PORT, help=sim_port_help)
    dev = sub.add_parser(
        "dev",
        help="the Dagster UI (dagster dev) on the demo's simulated account, until Ctrl-C",
        description=(
            "Serve the demo's simulated SMSC account (same seed, login and start date as `smsc-dagster demo`, "
            "SMSC's real rate limits) and run `dagster dev` with the SMSC_* environment pointing at it; print "
            "the UI's address once it has loaded the code location. Needs DAGSTER_HOME (`make dev` sets it)."
        ),
    )
    dev.add_argument("--port", type=int, default=3000, help="the UI's port (default 3000)")
    dev.add_argument("--host", default="127.0.0.1", help="the UI's interface (default 127.0.0.1)")
    dev.add_argument("--sim-port", type=int, default=DEMO_SIM_PORT, help=sim_port_help)
    dev.add_argument("--seed", type=int, default=DEMO_SEED, help=seed_help)
    dev.add_argument("--data-dir", default=None, help="Parquet and DuckDB, as for the demo (default ./data)")
    dev.add_argument(
        "--workspace", default=None, help="workspace file (default ./workspace.yaml, else the package's location)"
    )
    dev.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the UI to come up (default 300)"
    )
    sim = sub.add_parser("simulator", help="serve a simulated SMSC account on 127.0.0.1 until Ctrl-C")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.command == "demo":
        from .demo import run_demo

        return run_demo(days=args.days, seed=args.seed, data_dir=args.data_dir, sim_port=args.sim_port)
    if args.command == "dev":
        from .dev import run_dev

        return run_dev(
            port=args.port,
            host=args.host,
            sim_port=args.sim_port,
            seed=args.seed,
            data_dir=args.data_dir,
            workspace=args.workspace,
            ready_timeout_s=args.timeout,
        )
    from .testing.simulator import serve_forever

    serve_forever(args.port, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
