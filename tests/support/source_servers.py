"""Real servers for remote build contexts: ``git daemon``, git smart HTTP, plain file downloads.

Why real servers: a git context is only proven when the real git client fetched it over the
real protocols (git://, smart HTTP with ``git http-backend``), and a tarball URL only when a
real HTTP server sent it. Every server listens on 127.0.0.1 on a port the kernel picked.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.support.http_server import Exchange, HttpServer

GIT_ENV = {
    "GIT_AUTHOR_NAME": "kiln tests",
    "GIT_AUTHOR_EMAIL": "tests@kiln.invalid",
    "GIT_COMMITTER_NAME": "kiln tests",
    "GIT_COMMITTER_EMAIL": "tests@kiln.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
}


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git with a fixed identity and no user/system config; return stdout."""
    return subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True
    ).stdout.strip()


class BareRepo:
    """A bare repository under ``root/name`` filled through a scratch work tree."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = root / name
        self.work = root / f"{name}.work"
        git("init", "--quiet", "--bare", "--initial-branch=main", str(self.path))
        git("init", "--quiet", "--initial-branch=main", str(self.work))
        git("remote", "add", "origin", str(self.path), cwd=self.work)

    def commit(self, files: dict[str, str], branch: str = "main", message: str = "c") -> str:
        """Write ``files`` on ``branch`` (created from the current one), commit, push; return id."""
        if git("branch", "--show-current", cwd=self.work) != branch:
            git("checkout", "--quiet", "-B", branch, cwd=self.work)
        for rel, text in files.items():
            path = self.work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "--all", cwd=self.work)
        git("commit", "--quiet", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "--quiet", "origin", f"{branch}:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tag(self, name: str) -> None:
        git("tag", name, cwd=self.work)
        git("push", "--quiet", "origin", f"refs/tags/{name}", cwd=self.work)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GitDaemon:
    """``git daemon`` exporting every repository under ``base_path`` as git://127.0.0.1:PORT/."""

    def __init__(self, base_path: Path) -> None:
        self.base_path = base_path
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--informative-errors",
                f"--base-path={self.base_path}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.base_path),
            ],
            env=GIT_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError("git daemon did not start")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class SourceHttpServer(HttpServer):
    """http://127.0.0.1:PORT/git/REPO (smart HTTP) and /files/NAME (downloads).

    ``credentials`` (user, password) makes the git part require basic auth; ``requests`` lists
    every path asked for, so tests can tell what the client did.
    """

    def __init__(
        self, git_root: Path, files_root: Path, credentials: tuple[str, str] | None = None
    ) -> None:
        self.git_root = git_root
        self.files_root = files_root
        self.credentials = credentials
        super().__init__(self._answer)

    @property
    def requests(self) -> list[str]:
        return [seen.path.partition("?")[0] for seen in self.seen]

    def _answer(self, exchange: Exchange) -> None:
        path, _, query = exchange.path.partition("?")
        if path.startswith("/git/"):
            if self._authorized(exchange):
                self._git(exchange, path[len("/git") :], query)
        elif path.startswith("/files/") and exchange.method == "GET":
            rel = path[len("/files/") :]
            target = self.files_root / rel
            if ".." not in rel.split("/") and target.is_file():
                headers = {"Content-Type": "application/octet-stream"}
                exchange.reply(200, target.read_bytes(), headers)

    def _authorized(self, exchange: Exchange) -> bool:
        if self.credentials is None:
            return True
        token = base64.b64encode(":".join(self.credentials).encode()).decode()
        if exchange.headers.get("Authorization") == f"Basic {token}":
            return True
        exchange.reply(401, b"", {"WWW-Authenticate": 'Basic realm="git"'})
        return False

    def _git(self, exchange: Exchange, path_info: str, query: str) -> None:
        env = {
            **GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.git_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": exchange.method,
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "CONTENT_TYPE": exchange.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(exchange.body)),
            "REMOTE_ADDR": "127.0.0.1",
        }
        for header in ("Content-Encoding", "Git-Protocol"):
            if exchange.headers.get(header):
                env["HTTP_" + header.upper().replace("-", "_")] = exchange.headers[header]
        out = subprocess.run(
            ["git", "http-backend"], input=exchange.body, env=env, capture_output=True, check=False
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers[name] = value.strip()
        exchange.reply(status, payload, headers)


@dataclass(frozen=True)
class GitFixture:
    """The served repositories and what their commits hold."""

    daemon_url: str  # git://127.0.0.1:PORT
    http: SourceHttpServer  # /git/... needs GIT_CREDENTIALS; /files/... is open
    first: str  # commit on main: a.txt == "one"
    second: str  # main's head: a.txt == "two"
    feature: str  # branch feature's head: a.txt == "feature"


GIT_CREDENTIALS = ("gituser", "git-pass-5ecret")


def _fill_repos(root: Path, daemon_url: str) -> tuple[str, str, str]:
    lib = BareRepo(root, "lib.git")
    lib.commit({"lib.txt": "from the submodule\n"})
    app = BareRepo(root, "app.git")
    first = app.commit(
        {
            "Dockerfile": "FROM scratch\nCOPY a.txt /\n",
            "a.txt": "one",
            "sub/Dockerfile": "FROM scratch\nCOPY b.txt /\n",
            "sub/b.txt": "b",
        }
    )
    app.tag("v1")
    second = app.commit({"a.txt": "two"})
    git("submodule", "--quiet", "add", f"{daemon_url}/lib.git", "vendor/lib", cwd=app.work)
    git("commit", "--quiet", "-m", "submodule", cwd=app.work)
    git("push", "--quiet", "origin", "main", cwd=app.work)
    second = git("rev-parse", "HEAD", cwd=app.work)
    feature = app.commit({"a.txt": "feature"}, branch="feature")
    return first, second, feature


def serve_git_sources(root: Path) -> Iterator[GitFixture]:
    """Start the git daemon and the HTTP server over fresh repositories under ``root``."""
    repos, files = root / "repos", root / "files"
    repos.mkdir()
    files.mkdir()
    with GitDaemon(repos) as daemon, SourceHttpServer(repos, files, GIT_CREDENTIALS) as http:
        first, second, feature = _fill_repos(repos, daemon.url)
        yield GitFixture(daemon.url, http, first, second, feature)
