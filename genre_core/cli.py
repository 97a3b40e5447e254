"""The ``genre`` command: one entry point, one subcommand per stage plus data/sql/stack utilities.

Stage commands run their Prefect flow by default (``--direct`` calls the library without the Prefect engine).
Heavy imports (torch, prefect, mlflow) happen inside the command that needs them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from genre_core.config import ConfigError, GenreConfig, load_config
from genre_core.errors import describe_error, one_line
from genre_core.stages import NIGHTLY, STAGES, get_stage, load


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=None, help="YAML config merged over conf/default.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override one config key (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genre", description="GENRE: LLM-powered batch recommendation")
    sub = parser.add_subparsers(dest="command", required=True)
    for stage in (*STAGES, NIGHTLY):
        p = sub.add_parser(stage.name, help=stage.help)
        _add_common(p)
        p.add_argument("--direct", action="store_true", help="call the library directly, without the Prefect engine")
        p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p = sub.add_parser("sql", help="run a read-only SQL query over the warehouse and published results")
    _add_common(p)
    p.add_argument("query")
    p.add_argument("--csv", action="store_true", help="machine-readable CSV output")
    p = sub.add_parser("data", help="dataset utilities")
    dsub = p.add_subparsers(dest="data_command", required=True)
    f = dsub.add_parser("fetch", help="download a public dataset into $GENRE_HOME/datasets (checksum-verified)")
    f.add_argument("name", choices=["movielens-100k"])
    p = sub.add_parser("config", help="print the resolved config")
    _add_common(p)
    p = sub.add_parser("stack", help="local Prefect server + work pool + deployments + worker")
    ssub = p.add_subparsers(dest="stack_command", required=True)
    for name in ("up", "down", "status"):
        s = ssub.add_parser(name)
        s.add_argument("--port", type=int, default=4200)
    return parser


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _run_stage(stage: str, cfg: GenreConfig, args: argparse.Namespace) -> dict[str, Any]:
    entry = get_stage(stage)
    if args.direct:
        return entry.run_direct(cfg, progress=not args.json)
    from genre_core.runtime import prepare_environment

    prepare_environment()  # before Prefect is imported (by the flow's module)
    from genre_core.errors import console_without_tracebacks

    flow = load(entry.flow)  # imports Prefect, which sets up its logging
    console_without_tracebacks()  # the failure is reported once, as one line, by main()
    params = load("flows.params:StageParams")(config=args.config, overrides=list(args.overrides))
    return flow.with_options(timeout_seconds=cfg.execution.flow_timeout_s)(params)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "data":
            from genre_core.ingest.fetch import fetch_dataset
            path = fetch_dataset(args.name)
            print(f"{args.name} ready at {path}")
            return 0
        if args.command == "stack":
            from genre_core.stack import stack_command
            return stack_command(args.stack_command, port=args.port)
        cfg = load_config(args.config, args.overrides)
        if args.command == "config":
            print(json.dumps(cfg.model_dump(mode="json"), indent=2))
            return 0
        if args.command == "sql":
            from genre_core.sql import run_sql
            return run_sql(cfg, args.query, as_csv=args.csv)
        from genre_core.locking import pipeline_lock

        with pipeline_lock(args.command, cfg.execution.lock_wait_s):  # one writing run per GENRE_HOME
            summary = _run_stage(args.command, cfg, args)
        from genre_core.report import print_summary
        if args.json:
            _print_json(summary)
        else:
            print_summary(args.command, summary)
        return 0
    except ConfigError as exc:
        print(f"genre: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one readable line, never a traceback
        print(f"genre {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        if os.environ.get("GENRE_DEBUG"):
            raise
        return 1
    except KeyboardInterrupt:
        print(f"genre {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
