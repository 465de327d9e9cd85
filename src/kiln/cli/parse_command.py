"""`kiln parse DOCKERFILE`: print the parsed Dockerfile as JSON.

Why: tools and humans debugging a build want to see what kiln understood — stages, typed
instructions with their line ranges, directives, warnings — without running a build.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kiln.builder.describe import describe_dockerfile
from kiln.cli.flags import BooleanFlag, FlagParser


def add_parse_parser(subparsers: argparse._SubParsersAction[FlagParser]) -> None:
    """Register `kiln parse`."""
    parser = subparsers.add_parser(
        "parse",
        help="print a Dockerfile's parsed instructions as JSON",
        description=(
            "Parse a Dockerfile and print it as JSON: parser directives, global ARGs, every "
            "stage with its instructions (keyword, line, end_line, original text, flags and "
            "typed fields, all unexpanded) and the parser's warnings. Nothing is built."
        ),
    )
    parser.add_argument("dockerfile", metavar="DOCKERFILE", help="path of the Dockerfile")
    parser.add_argument("--compact", action=BooleanFlag, help="one line of JSON, no indent")


def run_parse_command(args: argparse.Namespace) -> int:
    """Print the JSON; errors (unreadable file, syntax) propagate as KilnError."""
    document = describe_dockerfile(Path(args.dockerfile))
    json.dump(document, sys.stdout, indent=None if args.compact else 2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
