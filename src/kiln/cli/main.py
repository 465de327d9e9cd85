"""The `kiln` command: parse arguments, run, render errors, map them to exit codes.

Why errors are rendered only here: every layer raises KilnError subclasses with a message and a
hint; one place turns them into `error: ...` lines and exit statuses, and no traceback reaches a
user for a problem they can fix.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from kiln.build.isolation import warm_up
from kiln.build.rootless import rerun_rootless, wants_user_namespace
from kiln.cli.build_command import add_build_parser, options_from_args
from kiln.cli.logging_setup import setup_logging
from kiln.cli.parse_command import add_parse_parser, run_parse_command
from kiln.cli.registry_commands import add_registry_parsers, run_registry_command
from kiln.errors import KilnError


def make_parser() -> argparse.ArgumentParser:
    """The top-level parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="kiln",
        description="Build container images from Dockerfiles without a daemon or privileges.",
    )
    parser.add_argument("--version", action="version", version="kiln 0.1.0")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_build_parser(subparsers)
    add_registry_parsers(subparsers)
    add_parse_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    args = make_parser().parse_args(argv)
    log = logging.getLogger("kiln")
    try:
        if args.command in ("build", "executor"):
            setup_logging(args.verbosity)
            options = options_from_args(args)
            if wants_user_namespace(options):
                status = rerun_rootless(options, sys.argv[1:] if argv is None else list(argv))
                if status is not None:
                    return status
            warm_up(options.isolation)  # the sandbox starts on another core meanwhile
            from kiln.build.builder import build  # the heavy import, after the line above

            result = build(options)
            print(result.digest)
            return 0
        if args.command == "parse":
            setup_logging("warn")
            return run_parse_command(args)
        if args.command in ("login", "warm", "push"):
            setup_logging(getattr(args, "verbosity", "info"))
            return run_registry_command(args)
    except KilnError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
