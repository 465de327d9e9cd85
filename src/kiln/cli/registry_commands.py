"""`kiln login`, `kiln warm` and `kiln push`: the registry commands besides `kiln build`.

Why separate from build_command: each is a small parser plus a call into kiln.commands; keeping them
here leaves the build command's (long) flag list alone. They share the registry flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiln.builder.options import parse_platform, parse_references
from kiln.cli.flags import BooleanFlag, FlagParser
from kiln.cli.registry_flags import add_registry_flags, add_tls_flags, registry_options_from_args
from kiln.commands.registry import login, push_saved, warm
from kiln.errors import UsageError


def add_registry_parsers(
    subparsers: argparse._SubParsersAction[FlagParser],
) -> None:
    """Register `login`, `warm` and `push`."""
    p = subparsers.add_parser(
        "login",
        help="store registry credentials in Docker's config.json",
        description="Check USER's password against REGISTRY, then store it in "
        "$DOCKER_CONFIG/config.json (else ~/.docker/config.json) as `docker login` does. "
        "The password is read from standard input.",
    )
    p.add_argument("registry", metavar="REGISTRY", help="registry host[:port], e.g. ghcr.io")
    p.add_argument("-u", "--username", required=True, help="user name")
    p.add_argument(
        "--password-stdin", action=BooleanFlag, required=True, help="read the password from stdin"
    )
    add_tls_flags(p.add_argument_group("TLS"))

    p = subparsers.add_parser(
        "warm",
        help="fill a base-image cache directory ahead of builds",
        description="Pull images (manifests, config, layers) into DIR, as Kaniko's warmer does; "
        "`kiln build --cache-dir DIR` then downloads no blob of them again.",
    )
    p.add_argument(
        "-i", "--image", action="append", required=True, metavar="REF", help="image (repeatable)"
    )
    p.add_argument("--cache-dir", type=Path, required=True, metavar="DIR", help="cache directory")
    p.add_argument(
        "--platform",
        "--custom-platform",
        dest="platform",
        default="linux/amd64",
        metavar="OS/ARCH[/VARIANT]",
        help="platform picked from multi-platform images; a single-platform image must match",
    )
    add_registry_flags(p.add_argument_group("registries"))

    p = subparsers.add_parser(
        "push",
        help="push a saved image (OCI layout directory or docker-archive tarball)",
        description="Push an image saved by `kiln build --oci-layout-path/--tar-path` (or any OCI "
        "layout / `docker save` archive). OCI layouts keep their exact manifest bytes and digest.",
    )
    p.add_argument("source", metavar="TARBALL|OCI-LAYOUT[:TAG]", help="the saved image")
    p.add_argument(
        "-d", "--destination", action="append", required=True, metavar="REF", help="(repeatable)"
    )
    p.add_argument("--digest-file", type=Path, metavar="FILE", help="write the digest here")
    p.add_argument(
        "--image-name-with-digest-file",
        type=Path,
        metavar="FILE",
        help="write REGISTRY/REPO@DIGEST per destination here",
    )
    add_registry_flags(p.add_argument_group("registries"))


def run_registry_command(args: argparse.Namespace) -> int:
    """Run `login`, `warm` or `push`; return the exit status."""
    options = registry_options_from_args(args)
    if args.command == "login":
        if not args.password_stdin:
            raise UsageError("kiln login reads the password from standard input only")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("no password on standard input")
        path = login(args.registry, args.username, password, options)
        print(f"Login succeeded; credentials stored in {path}")
        return 0
    if args.command == "warm":
        platform = parse_platform(args.platform)
        warm(parse_references(args.image), args.cache_dir, options, platform)
        return 0
    source, tag = _source_and_tag(args.source)
    digest = push_saved(
        source,
        parse_references(args.destination),
        options,
        tag=tag,
        digest_file=args.digest_file,
        image_name_with_digest_file=args.image_name_with_digest_file,
    )
    print(digest)
    return 0


def _source_and_tag(text: str) -> tuple[Path, str | None]:
    path = Path(text)
    if not path.exists() and ":" in text:
        base, _, tag = text.rpartition(":")
        return Path(base), tag
    return path, None
