"""A real distribution registry (Debian's ``docker-registry``) for tests.

Why: kiln's registry code must be proven against the real CNCF registry, not only against
doubles. ``RegistryServer`` starts one on a free loopback port with its own storage directory,
optionally behind htpasswd basic auth and/or TLS with a throwaway CA, and waits until it answers.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.connect_proxy import PROXIED_NAME

REGISTRY_BINARY = "docker-registry"
STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(argv: list[str], cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """Create a CA and a server certificate for 127.0.0.1, localhost and the name only the test
    proxy resolves (``PROXIED_NAME``); return (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    _run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=kiln test CA"],
        directory,
    )  # fmt: skip
    _run(
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
         "-out", "server.csr", "-subj", "/CN=localhost"],
        directory,
    )  # fmt: skip
    (directory / "ext.cnf").write_text(
        f"subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:{PROXIED_NAME}\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _run(
        ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf"],
        directory,
    )  # fmt: skip
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


def make_client_cert(directory: Path, name: str = "client") -> tuple[Path, Path]:
    """A client certificate signed by the CA in ``directory`` (mutual TLS); (cert, key)."""
    _run(
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
         "-out", f"{name}.csr", "-subj", f"/CN={name}"],
        directory,
    )  # fmt: skip
    (directory / f"{name}.cnf").write_text("extendedKeyUsage=clientAuth\n")
    _run(
        ["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.cnf"],
        directory,
    )  # fmt: skip
    return directory / f"{name}.crt", directory / f"{name}.key"


class RegistryServer:
    """One running ``docker-registry`` process on 127.0.0.1.

    ``host`` is ``"127.0.0.1:PORT"``; ``url`` the base URL with scheme; ``ca_path`` the CA that
    signed the server certificate (TLS only); ``htpasswd`` the (user, password) it accepts.
    Use as a context manager or call ``stop()``.
    """

    def __init__(
        self,
        *,
        htpasswd: tuple[str, str] | None = None,
        tls: bool = False,
        mtls: bool = False,
        auth_config: str | None = None,
        workdir: Path | None = None,
    ) -> None:
        if shutil.which(REGISTRY_BINARY) is None:
            raise RuntimeError(
                f"{REGISTRY_BINARY} is not installed; install Debian's docker-registry package"
            )
        self.htpasswd = htpasswd
        self.tls = tls or mtls
        self.mtls = mtls
        self.auth_config = auth_config
        self.client_cert: tuple[Path, Path] | None = None
        self._own_workdir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="kiln-registry-")) if workdir is None else workdir
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ca_path: Path | None = None
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if self.tls else 'http'}://{self.host}"
        self._log = (self.workdir / "registry.log").open("wb")
        config = self._write_config()
        self._process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _write_config(self) -> Path:
        storage = self.workdir / "storage"
        storage.mkdir(exist_ok=True)
        http = f"  addr: {self.host}\n"
        if self.tls:
            self.ca_path, cert, key = make_tls_files(self.workdir / "tls")
            http += f"  tls:\n    certificate: {cert}\n    key: {key}\n"
            if self.mtls:
                self.client_cert = make_client_cert(self.workdir / "tls")
                http += f"    clientcas:\n      - {self.ca_path}\n"
        auth = self.auth_config or ""
        if self.htpasswd is not None:
            user, password = self.htpasswd
            result = subprocess.run(
                ["htpasswd", "-Bbn", user, password], check=True, capture_output=True
            )
            htfile = self.workdir / "htpasswd"
            htfile.write_bytes(result.stdout)
            auth = f"auth:\n  htpasswd:\n    realm: kiln-test\n    path: {htfile}\n"
        config = self.workdir / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n{http}{auth}"
        )
        return config

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_path))
        if self.client_cert is not None:
            context.load_cert_chain(str(self.client_cert[0]), str(self.client_cert[1]))
        return context

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited with {self._process.returncode}: {self.log_text()}"
                )
            try:
                with urllib.request.urlopen(
                    f"{self.url}/v2/", timeout=2, context=self._ssl_context()
                ) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code == 401:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not answer on {self.url}: {self.log_text()}")

    def log_text(self) -> str:
        """The registry's own log output so far (for failure messages)."""
        self._log.flush()
        return (self.workdir / "registry.log").read_text(errors="replace")

    def stop(self) -> None:
        """Kill the registry, wait for it, and remove its files if we created them."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=10)
        self._log.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RegistryServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RegistryServer({self.url}, auth={self.htpasswd is not None})"
