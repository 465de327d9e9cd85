"""Fetch a git build context with the system ``git`` command.

Why the git CLI: it speaks every transport (git://, smart HTTP(S), ssh), knows submodules and
shallow fetches, and honours the user's git configuration; a Python reimplementation would be
large and always a little behind. kiln's executor image ships git under ``/kiln``.

Why ``init`` + ``fetch`` instead of ``clone``: a fetch can ask for one ref of any kind (branch,
tag, ``refs/pull/...``) or a bare commit id, shallowly, which ``clone --branch`` cannot.

Credentials: ``GIT_USERNAME``/``GIT_PASSWORD`` or ``GIT_TOKEN`` (Kaniko's variables; a token is
sent as the user name, as Kaniko does) become an ``Authorization`` header scoped to the
repository's host, handed to git through ``GIT_CONFIG_*`` environment variables, so they never
appear on a command line (``/proc/*/cmdline``), in ``.git/config`` or in kiln's output. Errors
from git are shown with URLs and secrets redacted.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from kiln.context.giturl import GitOptions, GitSource, redact_url
from kiln.errors import ContextError

log = logging.getLogger("kiln")

_TIMEOUT = 1800  # seconds for one git command; a huge repository over a slow link


def clone_git_context(
    source: GitSource, options: GitOptions, dest: Path, environ: Mapping[str, str] | None = None
) -> None:
    """Check out ``source`` into the empty directory ``dest``."""
    env = dict(os.environ if environ is None else environ)
    source = _pull_method(source, env)
    git = _Git(dest, env, source, options)
    log.info("Fetching git context %s%s", source.display_url, _describe(source, options))
    git.run("init", "--quiet", ".")
    git.run("remote", "add", "origin", source.url)
    ref = source.ref or options.branch
    fetched = git.fetch(source.commit or ref or "HEAD", options.depth)
    if not fetched and source.commit:
        # The server refused a bare commit id: fetch the ref (or everything) fully instead.
        git.fetch(ref or "+refs/heads/*:refs/remotes/origin/*", 0, required=True)
    elif not fetched:
        git.fetch(ref or "HEAD", options.depth, required=True)
    target = source.commit or git.output("rev-parse", "FETCH_HEAD^{commit}")
    if not options.single_branch:
        git.fetch("+refs/heads/*:refs/remotes/origin/*", options.depth, required=True)
    git.run("checkout", "--quiet", "--detach", target)
    if options.recurse_submodules:
        depth = ["--depth", str(options.depth)] if options.depth else []
        git.run("submodule", "update", "--init", "--recursive", *depth)


def _describe(source: GitSource, options: GitOptions) -> str:
    parts = []
    if source.ref or options.branch:
        parts.append(f"ref {source.ref or options.branch}")
    if source.commit:
        parts.append(f"commit {source.commit}")
    return f" ({', '.join(parts)})" if parts else ""


def _pull_method(source: GitSource, env: Mapping[str, str]) -> GitSource:
    """Kaniko fetches ``git://host/repo`` over HTTPS; ``GIT_PULL_METHOD=https|http`` does too."""
    method = env.get("GIT_PULL_METHOD", "").lower()
    if not method or not source.url.lower().startswith("git://"):
        return source
    if method not in ("http", "https"):
        raise ContextError(
            f"GIT_PULL_METHOD={method!r} is not supported", hint="use https or http, or unset it"
        )
    url = f"{method}://{source.url[len('git://') :]}"
    return GitSource(url, source.ref, source.commit, source.subdir)


def _auth_header(env: Mapping[str, str]) -> str | None:
    token = env.get("GIT_TOKEN")
    user, password = (token, "") if token else (env.get("GIT_USERNAME"), env.get("GIT_PASSWORD"))
    if not user and not password:
        return None
    raw = f"{user or ''}:{password or ''}".encode()
    return "Authorization: Basic " + base64.b64encode(raw).decode("ascii")


def _secrets(env: Mapping[str, str], header: str | None) -> list[str]:
    values = [env.get(name, "") for name in ("GIT_TOKEN", "GIT_PASSWORD")]
    if header:
        values.append(header.split(" ")[-1])
    return [value for value in values if len(value) >= 3]


class _Git:
    """Runs git in one work tree with the credential and TLS settings of this fetch."""

    def __init__(
        self, dest: Path, env: dict[str, str], source: GitSource, options: GitOptions
    ) -> None:
        binary = shutil.which("git", path=env.get("PATH"))
        if binary is None:
            raise ContextError(
                "a git build context needs the git command, which is not installed",
                hint="install git (Debian: apt-get install git), or use a tar:// context",
            )
        self.binary = binary
        self.dest = dest
        self.source = source
        self.env = env
        header = _auth_header(env)
        self.secrets = _secrets(env, header)
        config: list[tuple[str, str]] = []
        parts = urlsplit(source.url)
        if header and parts.scheme in ("http", "https") and parts.hostname:
            port = f":{parts.port}" if parts.port else ""
            config.append((f"http.{parts.scheme}://{parts.hostname}{port}/.extraHeader", header))
        if options.insecure_skip_tls:
            config.append(("http.sslVerify", "false"))
        env["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a password on a terminal
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value

    def fetch(self, refspec: str, depth: int, *, required: bool = False) -> bool:
        """``git fetch origin REFSPEC``; False when the server refused it (and not required)."""
        shallow = ["--depth", str(depth)] if depth else []
        args = ["fetch", "--quiet", "--no-tags", *shallow, "origin", refspec]
        return self.run(*args, required=required)

    def output(self, *args: str) -> str:
        """Run a git command that must succeed and return its standard output."""
        proc = self._call(args)
        if proc.returncode != 0:
            raise self._failure(args, proc.stderr)
        return proc.stdout.strip()

    def run(self, *args: str, required: bool = True) -> bool:
        """Run a git command; False on failure unless ``required`` (then ContextError)."""
        proc = self._call(args)
        if proc.returncode == 0:
            return True
        if not required:
            log.debug("git %s failed; trying another way", args[0])
            return False
        raise self._failure(args, proc.stderr)

    def _failure(self, args: tuple[str, ...], stderr: str) -> ContextError:
        return ContextError(
            f"git {args[0]} failed for {self.source.display_url}: {self._redact(stderr)}",
            hint=_hint(stderr),
        )

    def _call(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args],
            cwd=self.dest,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )

    def _redact(self, text: str) -> str:
        text = text.strip().replace(self.source.url, self.source.display_url)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return " ".join(redact_url(word) if "@" in word else word for word in text.split())


def _hint(stderr: str) -> str:
    lowered = stderr.lower()
    if any(word in lowered for word in ("authentication", "username", " 401", " 403")):
        return "set GIT_USERNAME and GIT_PASSWORD (or GIT_TOKEN) for this repository"
    if "certificate" in lowered or "ssl" in lowered:
        return "pass --git insecure-skip-tls=true only if you trust the network"
    if "couldn't find remote ref" in lowered or "not our ref" in lowered:
        return "check the ref (URL#refs/heads/BRANCH, URL#TAG) and the commit id"
    return "check the repository URL and that this machine can reach it"
