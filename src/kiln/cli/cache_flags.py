"""The layer-cache flags of `kiln build`: Kaniko's (`--cache`, `--cache-repo`, `--cache-ttl`,
`--no-push-cache`, `--cache-run-layers`, `--cache-copy-layers`, `--compressed-caching`), Docker's
(`--no-cache`, `--no-cache-filter`) and buildx's (`--cache-from`, `--cache-to`, mapped onto the
same caches by ``kiln.builder.cache_specs``), plus `--cache-report`.

Why a module of its own: the flags are one topic with help texts long enough to be the
documentation, and `build_command` stays about the build itself.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from kiln.builder.cache_setup import parse_cache_ttl
from kiln.builder.cache_specs import options_from_cache_specs
from kiln.builder.options import parse_references
from kiln.cli.flags import BooleanFlag

log = logging.getLogger("kiln")


def add_cache_flags(parser: argparse.ArgumentParser) -> None:
    """Register the cache flags in a group of their own."""
    g = parser.add_argument_group(
        "layer cache",
        "Each RUN, COPY, ADD and WORKDIR step has a key: the step before it (the base image "
        "for the first), the instruction after expansion, the build args and environment it "
        "sees, USER/WORKDIR/SHELL, the content and mode of every file it copies (after "
        ".dockerignore, never mtimes), the platform and the layer options. With --cache-dir "
        "the results are kept there (local cache); with --cache or --cache-repo in a registry. "
        "Each step logs CACHED or `cache miss: <reason>`.",
    )
    g.add_argument(
        "--cache",
        action=BooleanFlag,
        default=None,  # None: not given (then --cache-repo turns the cache on); False: off
        help="share step layers through a registry: --cache-repo, else <first destination>/cache",
    )
    g.add_argument(
        "--cache-repo",
        metavar="REGISTRY/REPO",
        help="the registry repository of the layer cache (one tag per step key); implies --cache "
        "unless --cache=false is given (then it is not used, as in Kaniko)",
    )
    g.add_argument(
        "--cache-ttl",
        default="336h",
        metavar="DURATION",
        help="cache entries older than this are misses (Go duration: 336h, 90m)",
    )
    g.add_argument(
        "--no-push-cache",
        action=BooleanFlag,
        help="look the registry cache up but never add to it",
    )
    g.add_argument(
        "--cache-run-layers",
        action=BooleanFlag,
        default=True,
        help="cache RUN steps (--cache-run-layers=false runs every RUN)",
    )
    g.add_argument(
        "--cache-copy-layers",
        action=BooleanFlag,
        default=True,
        help="cache COPY/ADD steps (keys cover the copied files' content, so this is safe; "
        "Kaniko's default is false)",
    )
    g.add_argument(
        "--cache-from",
        action="append",
        default=[],
        metavar="SPEC",
        help="buildx's cache import: type=registry,ref=REGISTRY/REPO (the registry cache; a "
        "bare REGISTRY/REPO is the same) or type=local,src=DIR (the local cache in DIR, which "
        "becomes the --cache-dir); only named here, a cache is looked up and never added to. "
        "Other types (gha, s3, inline, ...) and keys are refused (repeatable)",
    )
    g.add_argument(
        "--cache-to",
        action="append",
        default=[],
        metavar="SPEC",
        help="buildx's cache export: type=registry,ref=REGISTRY/REPO[,mode=max] or "
        "type=local,dest=DIR[,mode=max]; that cache is read and added to. kiln caches every "
        "step of every stage (mode=max), so mode=min is refused; a tag in ref is not used "
        "(one tag per step key) (repeatable)",
    )
    g.add_argument(
        "--compressed-caching",
        action=BooleanFlag,
        default=True,
        help="Kaniko's switch to trade speed for memory; kiln always caches the compressed "
        "layer it built and streams it to disk, never holding a layer in memory, so false "
        "changes nothing (accepted for Kaniko command lines, and logged)",
    )
    g.add_argument(
        "--no-cache",
        action=BooleanFlag,
        help="run every step and cache nothing (the --cache-dir still keeps pulled blobs)",
    )
    g.add_argument(
        "--no-cache-filter",
        action="append",
        default=[],
        metavar="STAGE",
        help="run this stage's steps without looking them up (they are still cached); "
        "repeatable or comma-separated",
    )
    g.add_argument(
        "--cache-report",
        type=Path,
        metavar="FILE",
        help="write a JSON report: per step its key, named inputs, hit or miss, reason, seconds",
    )


def cache_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``BuildOptions`` fields the cache flags set."""
    repo = parse_references([args.cache_repo])[0] if args.cache_repo else None
    if args.cache is False and repo is not None:  # an explicit --cache=false wins, as in Kaniko
        log.warning(
            "--cache=false: the registry cache is off, so --cache-repo %s is not used",
            args.cache_repo,
        )
        repo = None
    stages = tuple(s for item in args.no_cache_filter for s in item.split(",") if s)
    if not args.compressed_caching:
        log.info(
            "--compressed-caching=false: kiln streams cached layers to disk, compressed as "
            "built, and never holds one in memory; there is nothing to trade, so it changes nothing"
        )
    given = {"cache_repo": repo, "cache_dir": args.cache_dir, "push_cache": not args.no_push_cache}
    specs = options_from_cache_specs(
        args.cache_from, args.cache_to, given, ("--cache-from", "--cache-to")
    )
    repo = specs.get("cache_repo", repo)
    return {
        "cache": bool(args.cache) or repo is not None,
        "cache_repo": repo,
        "cache_ttl": parse_cache_ttl(args.cache_ttl),
        "push_cache": specs.get("push_cache", not args.no_push_cache),
        "cache_dir": specs.get("cache_dir", args.cache_dir),
        "write_local_cache": specs.get("write_local_cache", True),
        "cache_run_layers": args.cache_run_layers,
        "cache_copy_layers": args.cache_copy_layers,
        "no_cache": args.no_cache,
        "no_cache_stages": stages,
        "cache_report": args.cache_report,
    }
