"""The `kiln` command: parse arguments, run, render errors, map them to exit codes.

Why errors are rendered only here: every layer raises KilnError subclasses with a message and a
hint; one place turns them into `error: ...` lines and exit statuses, and no traceback reaches a
user for a problem they can fix.

SIGTERM and SIGINT stop a command the same way (`_stop_on_signals`): the build is cancelled
(its running RUN step killed at once, see `kiln.builder.cancel`), it unwinds through its normal
clean-up, and kiln exits 128+N (143, 130) after one line saying what was interrupted. Installing
a handler also matters as PID 1 of a container, where the kernel drops signals that have none.
"""

from __future__ import annotations

import gc
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from kiln.builder.prestart import isolation_if_building, warm_up

if TYPE_CHECKING:
    import argparse

    from kiln.builder.cancel import Cancellation
    from kiln.errors import Interrupted

# Everything else is imported inside the functions: `main` first starts the RUN sandbox (see
# `kiln.builder.prestart`), and only then loads the builder and the registry client.


def make_parser() -> argparse.ArgumentParser:
    """The top-level parser with its subcommands."""
    import argparse

    from kiln.cli.build_command import EXIT_STATUS_HELP, add_build_parser
    from kiln.cli.flags import FlagHelpFormatter, FlagParser
    from kiln.cli.parse_command import add_parse_parser
    from kiln.cli.registry_commands import add_registry_parsers

    class _TopHelp(FlagHelpFormatter, argparse.RawDescriptionHelpFormatter):
        """Boolean flags as --flag[=true|false]; the exit-status table as written."""

    parser = FlagParser(
        prog="kiln",
        description="Build container images from Dockerfiles without a daemon or privileges.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=_TopHelp,
    )
    parser.add_argument("--version", action="version", version="kiln 0.1.0")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_build_parser(subparsers)
    add_registry_parsers(subparsers)
    add_parse_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    early = isolation_if_building(arguments)
    if early is not None:
        warm_up(early)  # the sandbox boots on another core while kiln loads itself
    import logging

    from kiln.builder.cancel import Cancellation
    from kiln.builder.resources import describe, exc_directory, is_resource_error
    from kiln.builder.rootless import rerun_rootless, wants_user_namespace
    from kiln.cli.build_command import options_from_args
    from kiln.cli.hints import render_for_cli
    from kiln.cli.logging_setup import setup_logging
    from kiln.cli.parse_command import run_parse_command
    from kiln.cli.registry_commands import run_registry_command
    from kiln.errors import Interrupted, KilnError

    args = make_parser().parse_args(arguments)
    if not gc.isenabled():  # `run` turned the collector off for the start-up
        gc.freeze()  # what kiln loaded lives as long as the process: collections skip it
        gc.enable()
    log = logging.getLogger("kiln")
    cancellation = Cancellation()
    cancellation.activity = f"kiln {args.command}"
    _stop_on_signals(cancellation)
    try:
        if args.command in ("build", "executor"):
            setup_logging(args.verbosity)
            options = options_from_args(args)
            if wants_user_namespace(options):
                status = rerun_rootless(options, arguments)  # it forwards SIGTERM/SIGINT
                if status is not None:
                    return status
            if options.isolation != early:
                warm_up(options.isolation)  # the guess above missed (an abbreviated flag)
            from kiln.builder.builder import build

            result = build(options, cancellation)
            print(result.digest)
            return 0
        if args.command == "parse":
            setup_logging("warn")
            return run_parse_command(args)
        if args.command in ("login", "warm", "push"):
            setup_logging(getattr(args, "verbosity", "info"))
            return run_registry_command(args)
    except KilnError as exc:
        log.error("%s", render_for_cli(exc))  # hints name flags, not keyword arguments
        return exc.exit_code
    except (OSError, MemoryError) as exc:  # out of disk/fds/memory where no writer said what
        if not is_resource_error(exc):
            return _internal_error(exc)
        log.error("%s", render_for_cli(describe(exc, "kiln's files", exc_directory(exc))))
        return 1
    except Interrupted as exc:
        log.error("%s", _interruption(exc, cancellation))
        return 128 + (exc.signum or signal.SIGINT)
    except KeyboardInterrupt:  # before the handlers were installed
        log.error("interrupted")
        return 130
    except Exception as exc:  # a bug in kiln, not something the user did
        return _internal_error(exc)
    return 2


#: The exit status of a bug in kiln (sysexits' EX_SOFTWARE), distinct from a failed build.
INTERNAL_ERROR = 70


def _internal_error(exc: BaseException) -> int:
    """One line naming the exception instead of a traceback; the traceback at ``-v debug``.

    Why: every failure a user can cause is a ``KilnError`` with a message and a hint, so what
    arrives here is a defect; users get a short report to file, developers the stack at debug.
    """
    import logging
    import traceback

    log = logging.getLogger("kiln")
    log.error(
        "internal error: %s: %s\nhint: this is a bug in kiln; please report it with the output "
        "of the same command run with -v debug (it shows where it happened)",
        type(exc).__name__,
        exc,
    )
    if log.isEnabledFor(logging.DEBUG):  # kiln's log format prints no exc_info: format it here
        log.debug("where:\n%s", "".join(traceback.format_exception(exc)).rstrip())
    return INTERNAL_ERROR


def _stop_on_signals(cancellation: Cancellation) -> None:
    """SIGTERM and SIGINT cancel the command; the first one counts, later ones are ignored
    (the clean-up they would interrupt is short; SIGKILL still ends kiln at once)."""
    from kiln.errors import Interrupted

    def stop(signum: int, _frame: FrameType | None) -> None:
        reason = Interrupted(signum)
        if cancellation.cancel(reason) and cancellation.raises_here():
            raise reason

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)


def _interruption(exc: Interrupted, cancellation: Cancellation) -> str:
    """One line: which signal, what it interrupted, and whether any tag had moved."""
    signum = exc.signum or signal.SIGINT
    pushed = cancellation.pushed
    tags = f"already pushed: {', '.join(pushed)}" if pushed else "no tag was changed"
    return (
        f"interrupted by {signal.Signals(signum).name} during {cancellation.activity}; "
        f"stopped and cleaned up, {tags}"
    )


def run() -> NoReturn:
    """The `kiln` command (console script and ``python -m kiln.cli.main``): `main`, then exit.

    The cycle collector is off while kiln loads itself: imports allocate tens of thousands of
    objects (modules, classes, functions) that live as long as the process, and collecting
    every few hundred allocations only rescans them (about 7 ms); `main` then freezes them and
    turns it back on. ``gc.freeze()`` again before exiting, for the same reason: the shutdown
    would run the collector over all of them once more (about 20 ms). Everything else that
    happens at exit still does (atexit handlers stop the sandbox server and flush the log).
    """
    gc.disable()
    status = main()
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    run()
