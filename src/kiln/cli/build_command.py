"""`kiln build` (alias `kiln executor`): both `docker build` and Kaniko executor spellings.

Why one parser for both: Kaniko users paste their executor flags (`--context`, `--destination`,
`--dockerfile`), Docker users type `-t`, `-f` and a positional context; both fill the same
BuildOptions. Every flag's help text is the documentation users see in `kiln build --help`.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from pathlib import Path

from kiln.builder.options import BuildOptions, parse_platform, parse_references
from kiln.cli.cache_flags import add_cache_flags, cache_options_from_args
from kiln.cli.flags import BooleanFlag, FlagHelpFormatter, FlagParser
from kiln.cli.registry_flags import (
    add_push_extras,
    add_registry_flags,
    registry_options_from_args,
)
from kiln.errors import UsageError

VERBOSITIES = ("panic", "fatal", "error", "warn", "info", "debug", "trace")

#: The exit statuses, for `--help` (README.md has the same table).
EXIT_STATUS_HELP = """\
exit status:
  0        success; stdout holds only the image's manifest digest (sha256:...)
  1        the build failed (Dockerfile, context, registry, sandbox, disk full, ...);
           the last `ERRO` line on stderr says why
  2        usage error: unknown or malformed flag, contradictory options
  N        a RUN step exited with status N (128+S if killed by signal S), as Kaniko,
           buildah and `docker build` report it; so 1 and 2 can also come from a RUN
  70       an internal error (a bug in kiln; -v debug shows where)
  130      interrupted (Ctrl-C); 143 after SIGTERM
"""


class _HelpFormatter(
    FlagHelpFormatter,
    argparse.ArgumentDefaultsHelpFormatter,
    argparse.RawDescriptionHelpFormatter,
):
    """Defaults shown after each flag; the exit-status table kept as written."""


def add_build_parser(subparsers: argparse._SubParsersAction[FlagParser]) -> None:
    """Register `build` and its Kaniko-compatible alias `executor`."""
    parser = subparsers.add_parser(
        "build",
        aliases=["executor"],
        help="build an image from a Dockerfile and a context",
        description=textwrap.fill(
            "Build an image from a Dockerfile and a build context, then push it to every "
            "destination and/or save it. Accepts `docker build` flags (-t, -f, positional "
            "CONTEXT) and Kaniko executor flags (--context, --dockerfile, --destination). "
            "Boolean flags take --flag, --flag=true or --flag=false; flag names must be "
            "spelled in full.",
            width=78,
        ),
        epilog=EXIT_STATUS_HELP,
        formatter_class=_HelpFormatter,
    )
    _add_source_flags(parser)
    _add_output_flags(parser)
    _add_registry_flags(parser)
    _add_runtime_flags(parser)
    add_cache_flags(parser)


def _add_source_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to build")
    g.add_argument(
        "context_pos", nargs="?", metavar="CONTEXT", help="build context (docker style; as -c)"
    )
    g.add_argument(
        "-c",
        "--context",
        dest="context_flag",
        metavar="CONTEXT",
        help="build context: a directory (PATH or dir://PATH); a tar archive, any compression "
        "(tar://FILE, tar://stdin or -); a git repository (git://HOST/REPO.git#REF#COMMIT, "
        "https://HOST/REPO.git#REF:SUBDIR; credentials from GIT_USERNAME/GIT_PASSWORD or "
        "GIT_TOKEN); an http(s):// tarball URL; s3://, gs:// or an Azure blob URL (optional "
        "extras kiln-builder[s3|gcs|azure]); default: .",
    )
    g.add_argument(
        "--context-sub-path",
        metavar="DIR",
        help="use this directory inside the context as the context",
    )
    g.add_argument(
        "--git",
        action="append",
        default=[],
        metavar="KEY=VALUE[,...]",
        help="git context options: branch=NAME (when the URL names no ref), "
        "single-branch=true|false, recurse-submodules=true|false, depth=N (default 1; 0: full "
        "history), insecure-skip-tls=true|false (repeatable)",
    )
    g.add_argument(
        "-f",
        "--file",
        "--dockerfile",
        dest="dockerfile",
        metavar="PATH",
        help="Dockerfile path, inside or outside the context, or - for standard input "
        "(relative paths: the current directory first, else the context; for fetched "
        "contexts the context first); default: CONTEXT/Dockerfile",
    )
    g.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="set a build-time ARG; NAME alone takes the value from the environment (repeatable)",
    )
    g.add_argument("--target", help="build only up to this stage (name or index)")
    g.add_argument(
        "--platform",
        "--custom-platform",
        dest="platform",
        default="linux/amd64",
        metavar="OS/ARCH[/VARIANT]",
        help="platform of base images: picked from an index; a single-platform base must match",
    )


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("where the image goes")
    g.add_argument(
        "-t",
        "--tag",
        "-d",
        "--destination",
        dest="destinations",
        action="append",
        default=[],
        metavar="REF",
        help="registry reference to push to, e.g. reg.example/app:1 (repeatable)",
    )
    g.add_argument(
        "--no-push", action=BooleanFlag, help="build but do not push (use with --tar-path etc.)"
    )
    g.add_argument(
        "--tar-path",
        type=Path,
        metavar="FILE",
        help="also write a docker-archive tarball (docker/podman load), which is an OCI archive "
        "of the same manifest too: `kiln push FILE` pushes the digest the build printed",
    )
    g.add_argument(
        "--oci-layout-path",
        type=Path,
        metavar="DIR",
        help="also write an OCI image layout holding the same manifest (its media types are "
        "--image-format's; skopeo and umoci read only oci ones from a layout)",
    )
    g.add_argument(
        "--digest-file",
        type=Path,
        metavar="FILE",
        help="write the image manifest digest here (also printed on stdout)",
    )
    g.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add a label to the final image (repeatable)",
    )
    g.add_argument(
        "--image-format",
        choices=("docker", "oci"),
        default="docker",
        help="manifest and config media types of the output",
    )
    g.add_argument(
        "--reproducible",
        action=BooleanFlag,
        help="the config's and history's created times are SOURCE_DATE_EPOCH (default 0) and "
        "file times in the layers are clamped to it: the same inputs give the same digest",
    )


def _add_registry_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("registries (credentials come from $DOCKER_CONFIG/config.json)")
    add_registry_flags(g)
    add_push_extras(g)


def _add_runtime_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("how the build runs")
    g.add_argument(
        "--isolation",
        choices=("auto", "namespaces", "chroot", "inplace"),
        default="auto",
        help="how RUN steps are isolated: namespaces (root with CAP_SYS_ADMIN; as a non-root "
        "user kiln re-executes itself as root in a user namespace, with /etc/subuid ranges via "
        "newuidmap when present), chroot (root with CAP_SYS_CHROOT and mount rights, "
        "CAP_SYS_ADMIN; /proc, /dev, /sys mounted, no pid isolation), inplace (Kaniko's model: "
        "the container's own / becomes each stage's root and RUN runs in it; everything but "
        "--kiln-dir, mounts and --ignore-path entries is replaced; stages one at a time; "
        "refused outside a container unless --force), auto (the best one that works here; "
        "inplace only as the container's root where neither namespaces nor chroot works, e.g. "
        "a default Kubernetes pod). RUN always gets Docker's /proc, /dev and /sys: a choice "
        "that cannot give them fails before the build",
    )
    _add_inplace_flags(g)
    g.add_argument(
        "--snapshotter",
        choices=("auto", "overlay", "walk"),
        default="auto",
        help="how a step's changes are found: overlay (each step runs on an overlay mount whose "
        "upper dir is its diff; costs what changed; needs mount rights), walk (stat every file "
        "before and after a RUN; works anywhere), auto (overlay where it works, else walk)",
    )
    g.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="build up to N independent stages at once (default: the number of CPUs)",
    )
    g.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="keep pulled and built blobs, and pulled layers unpacked once for the overlay "
        "snapshotter, here between builds (base-image cache), and the local layer cache "
        "(unless --no-cache); several builds may share it at once",
    )
    g.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="where rootfs and scratch directories are made (default: the system temp dir, "
        "never the current directory; inplace: --kiln-dir); never read as build context, even "
        "when inside it (nor is --cache-dir)",
    )
    g.add_argument("-v", "--verbosity", choices=VERBOSITIES, default="info", help="log level")


def _add_inplace_flags(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--kiln-dir",
        type=Path,
        default=Path("/kiln"),
        metavar="DIR",
        help="inplace: the directory holding kiln itself; never snapshotted, overwritten or "
        "deleted, and the default --work-dir (blob store, scratch, COPY --from sources)",
    )
    g.add_argument(
        "--ignore-path",
        dest="ignore_paths",
        action="append",
        default=[],
        metavar="PATH",
        help="inplace: never snapshot, overwrite or delete this path (repeatable; mount points "
        "from /proc/self/mountinfo are always kept)",
    )
    g.add_argument(
        "--ignore-var-run",
        action=BooleanFlag,
        default=True,
        help="inplace: keep /var/run out of resets and snapshots (--ignore-var-run=false to "
        "include it)",
    )
    g.add_argument(
        "--force",
        action=BooleanFlag,
        help="inplace: build over / even when kiln cannot tell it runs in a container",
    )
    g.add_argument(
        "--cleanup",
        action=BooleanFlag,
        help="inplace: put the container's filesystem back when the build ends (also after "
        "a failure), so another build can run in the same container",
    )


def _pairs(items: list[str], flag: str, from_env: bool) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"{flag} {item!r}: expected NAME=VALUE")
        if sep:
            out[key] = value
        elif from_env:
            out[key] = os.environ.get(key)
        else:
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE")
    return out


#: Flags whose parsed value is the ``BuildOptions`` field of the same name, as it is.
_AS_GIVEN = (
    "dockerfile",
    "context_sub_path",
    "target",
    "no_push",
    "tar_path",
    "oci_layout_path",
    "digest_file",
    "image_name_with_digest_file",
    "image_name_tag_with_digest_file",
    "compression",
    "compression_level",
    "image_format",
    "isolation",
    "snapshotter",
    "jobs",
    "work_dir",
    "reproducible",
    "kiln_dir",
    "ignore_var_run",
    "force",
    "cleanup",
)


def options_from_args(args: argparse.Namespace) -> BuildOptions:
    """Turn parsed flags into BuildOptions, rejecting contradictory combinations."""
    if args.context_pos and args.context_flag:
        raise UsageError("give the build context once: either CONTEXT or --context")
    context = args.context_flag or args.context_pos or "."
    if args.dockerfile == "-" and context in ("-", "tar://stdin"):
        raise UsageError(
            "the context and the Dockerfile cannot both come from standard input",
            hint="put the Dockerfile into the context archive, or pass it as a file",
        )
    labels = {k: v or "" for k, v in _pairs(args.label, "--label", False).items()}
    registry = registry_options_from_args(args)
    return BuildOptions(
        context=context,
        git=tuple(args.git),
        destinations=parse_references(args.destinations),
        build_args=_pairs(args.build_arg, "--build-arg", True),
        labels=labels,
        platform=parse_platform(args.platform),
        registry=registry,
        ignore_paths=tuple(args.ignore_paths),
        **{name: getattr(args, name) for name in _AS_GIVEN},
        **cache_options_from_args(args),
    )
