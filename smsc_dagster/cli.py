"""The ``smsc-dagster`` command: ``demo`` and ``simulator``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smsc-dagster", description="SMSC.kz history as Dagster assets")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the pipeline on the built-in simulator and print the results")
    demo.add_argument("--days", type=int, default=14, help="how many recent days to materialize (default 14)")
    demo.add_argument("--seed", type=int, default=42, help="seed of the simulated account")
    demo.add_argument("--data-dir", default=None, help="where to write Parquet and DuckDB (default ./data)")
    sim = sub.add_parser("simulator", help="serve a simulated SMSC account on 127.0.0.1 until Ctrl-C")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.command == "demo":
        from .demo import run_demo

        return run_demo(days=args.days, seed=args.seed, data_dir=args.data_dir)
    from .testing.simulator import serve_forever

    serve_forever(args.port, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
