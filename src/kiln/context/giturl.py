"""What a git build-context spec names: a repository URL, a ref, a commit and a subdirectory.

Why its own module: two spellings are in use and both must keep working. Kaniko writes
``git://host/repo.git#refs/heads/branch#<commit>`` (a ref, then optionally a commit to check
out), Docker/BuildKit writes ``https://host/repo.git#ref:subdir``. Parsing is pure, so every
form is a table-driven unit test; cloning lives in ``gitclone``.

``--git key=value,...`` (Kaniko's flag, plus ``depth``) is parsed here too, into ``GitOptions``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

from kiln.errors import UsageError

_COMMIT = re.compile(r"^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$")
_GIT_SCHEMES = ("git://", "ssh://", "git+ssh://", "git@")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


@dataclass(frozen=True)
class GitSource:
    """One git context: ``url`` is what git fetches (it may carry credentials: never log it)."""

    url: str
    ref: str | None = None
    commit: str | None = None
    subdir: str | None = None

    @property
    def display_url(self) -> str:
        """The URL without any user or password, for messages."""
        return redact_url(self.url)


@dataclass(frozen=True)
class GitOptions:
    """``--git`` settings: default branch, single-branch, submodules, history depth, TLS.

    ``depth`` 0 means the whole history; the default (1) fetches only what is checked out.
    """

    branch: str | None = None
    single_branch: bool = True
    recurse_submodules: bool = False
    depth: int = 1
    insecure_skip_tls: bool = False

    @classmethod
    def parse(cls, items: tuple[str, ...] | list[str]) -> GitOptions:
        """Parse ``--git`` values: each ``key=value[,key=value...]``; later keys win."""
        options = cls()
        for item in items:
            for pair in filter(None, (part.strip() for part in item.split(","))):
                key, sep, value = pair.partition("=")
                if not sep:
                    raise UsageError(f"--git {pair!r}: expected KEY=VALUE")
                options = _with_option(options, key.strip().lower(), value.strip())
        return options


def _boolean(key: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise UsageError(f"--git {key}={value!r}: expected true or false")


def _with_option(options: GitOptions, key: str, value: str) -> GitOptions:
    if key == "branch":
        return replace(options, branch=value or None)
    if key == "single-branch":
        return replace(options, single_branch=_boolean(key, value))
    if key == "recurse-submodules":
        return replace(options, recurse_submodules=_boolean(key, value))
    if key == "insecure-skip-tls":
        return replace(options, insecure_skip_tls=_boolean(key, value))
    if key == "depth":
        if not value.isdigit():
            raise UsageError(f"--git depth={value!r}: expected a number (0: full history)")
        return replace(options, depth=int(value))
    raise UsageError(
        f"--git: unknown option {key!r}",
        hint="known: branch, single-branch, recurse-submodules, depth, insecure-skip-tls",
    )


def is_git_spec(spec: str) -> bool:
    """Does this context spec name a git repository (rather than a directory or a tarball)?

    ``git://``, ``ssh://`` and ``git@host:path`` always do; ``http(s)://`` only when the path
    ends in ``.git`` (Docker's rule), so other URLs are downloaded as tarballs.
    """
    lowered = spec.lower()
    if lowered.startswith(_GIT_SCHEMES):
        return True
    if lowered.startswith(("http://", "https://")):
        return urlsplit(spec.split("#", 1)[0]).path.rstrip("/").endswith(".git")
    return False


def parse_git_spec(spec: str) -> GitSource:
    """Split a git context spec into URL, ref, commit and subdirectory.

    ``URL#REF#COMMIT`` (Kaniko) and ``URL#REF:SUBDIR`` (BuildKit) are both accepted; a 40-hex
    REF alone is taken as a commit. Empty parts mean "the default".
    """
    url, _, fragment = spec.partition("#")
    ref_part, _, commit = fragment.partition("#")
    ref, _, subdir = ref_part.partition(":")
    if commit and not _COMMIT.match(commit):
        raise UsageError(
            f"git context {redact_url(url)!r}: {commit!r} is not a commit id",
            hint="use URL#REF#COMMIT with a full 40-character commit id",
        )
    if ref and not commit and _COMMIT.match(ref):
        ref, commit = "", ref
    return GitSource(
        url=url,
        ref=ref or None,
        commit=commit.lower() or None,
        subdir=subdir.strip("/") or None,
    )


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` removed (safe to print)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
