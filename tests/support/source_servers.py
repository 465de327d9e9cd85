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
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self

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


class _Handler(BaseHTTPRequestHandler):
    server: SourceHttpServer

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def _authorized(self) -> bool:
        expected = self.server.credentials
        if expected is None:
            return True
        token = base64.b64encode(f"{expected[0]}:{expected[1]}".encode()).decode()
        if self.headers.get("Authorization") == f"Basic {token}":
            return True
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        path, _, query = self.path.partition("?")
        self.server.requests.append(path)
        if path.startswith("/git/"):
            if self._authorized():
                self._git(path[len("/git") :], query)
        elif path.startswith("/files/") and self.command == "GET":
            self._file(path[len("/files/") :])
        else:
            self.send_error(404)

    def _file(self, rel: str) -> None:
        target = self.server.files_root / rel
        if ".." in rel.split("/") or not target.is_file():
            self.send_error(404)
            return
        data = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _git(self, path_info: str, query: str) -> None:
        body = self._body() if self.command == "POST" else b""
        env = {
            **GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.server.git_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
        }
        for header in ("Content-Encoding", "Git-Protocol"):
            if self.headers.get(header):
                env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class SourceHttpServer(ThreadingHTTPServer):
    """http://127.0.0.1:PORT/git/REPO (smart HTTP) and /files/NAME (downloads).

    ``credentials`` (user, password) makes the git part require basic auth; ``requests`` lists
    every path asked for, so tests can tell what the client did.
    """

    daemon_threads = True

    def __init__(
        self, git_root: Path, files_root: Path, credentials: tuple[str, str] | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.git_root = git_root
        self.files_root = files_root
        self.credentials = credentials
        self.requests: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


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
