"""Connection failures against real sockets name their cause and host, and only failures that
can heal are retried: an unresolvable ``.invalid`` name, a refused port, a dead proxy, a peer
that never answers, and TLS mismatches with the real test registries.
Retries are counted through the client's ``sleep`` hook; no timing is asserted. Every socket is
on loopback: name lookups run in a child whose resolver is the ``local_dns`` server (NXDOMAIN
for every name), never the machine's."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.cli.hints import render_for_cli
from kiln.errors import ConnectError, NameNotFound, RegistryError, TLSError
from kiln.registry import RegistryClient
from tests.support.connect_proxy import PROXIED_NAME
from tests.support.local_dns import LocalDNS
from tests.support.registry_server import RegistryServer, free_port
from tests.support.tools import run_kiln

DIGEST = "sha256:" + "0" * 64


def _fail(host: str, **options: object) -> tuple[RegistryError, list[float]]:
    """What ``blob_exists`` raises against ``host`` with 3 retries, and the retry waits."""
    waits: list[float] = []
    kwargs: dict[str, object] = {"retries": 3, "sleep": waits.append, **options}
    with (
        RegistryClient(host, **kwargs) as client,  # type: ignore[arg-type]
        pytest.raises(RegistryError) as caught,
    ):
        client.blob_exists("team/app", DIGEST)
    return caught.value, waits


def _fail_report(host: str, options: dict[str, object]) -> dict[str, object]:
    """``_fail`` run by ``LocalDNS.call`` in a child: what the tests assert, as JSON."""
    error, waits = _fail(host, **options)
    return {"message": str(error), "cause": type(error.__cause__).__name__, "waits": waits}


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


@pytest.mark.usefixtures("no_proxy_env")
def test_a_name_dns_says_does_not_exist_is_not_retried(local_dns: LocalDNS) -> None:
    report = local_dns.call(_fail_report, "nosuch.kiln.invalid:5000", {"insecure": True})
    message = report["message"]
    assert "cannot resolve nosuch.kiln.invalid: DNS says the name does not exist" in message
    assert report["cause"] == NameNotFound.__name__
    assert report["waits"] == []  # one attempt: the name will not appear by waiting
    assert "attempts" not in message
    assert "nosuch.kiln.invalid" in local_dns.queries  # the answer came from the local server


@pytest.mark.usefixtures("no_proxy_env")
def test_a_refused_port_is_named_and_retried() -> None:
    port = free_port()
    error, waits = _fail(f"127.0.0.1:{port}", insecure=True)
    assert f"connection to 127.0.0.1:{port} refused" in str(error)
    assert "failed after 4 attempts" in str(error)
    assert isinstance(error.__cause__, ConnectError)
    assert len(waits) == 3
    assert str(error).endswith("hint: check that the registry is reachable")  # already HTTP


@pytest.mark.usefixtures("no_proxy_env")
def test_a_refused_https_port_suggests_marking_the_registry_plain_http() -> None:
    host = f"127.0.0.1:{free_port()}"
    error, _ = _fail(host, retries=0)
    assert f"mark it with insecure_registries=['{host}']" in str(error)
    assert f"mark it with --insecure-registry {host}" in render_for_cli(error)


def test_a_dead_proxy_is_named_as_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:proxy-secret@127.0.0.1:{port}")
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    error, waits = _fail(f"{PROXIED_NAME}:5000", retries=1)
    text = str(error)
    assert (
        f"connection to the proxy 127.0.0.1:{port} (from the *_PROXY environment) refused" in text
    )
    assert "proxy-secret" not in text
    assert len(waits) == 1


def test_an_unresolvable_proxy_is_named_and_not_retried(
    monkeypatch: pytest.MonkeyPatch, local_dns: LocalDNS
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.kiln.invalid:3128")
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    report = local_dns.call(_fail_report, f"{PROXIED_NAME}:5000", {})
    assert "cannot resolve the proxy proxy.kiln.invalid: DNS says" in report["message"]
    assert report["waits"] == []
    assert "proxy.kiln.invalid" in local_dns.queries
    assert not [name for name in local_dns.queries if PROXIED_NAME in name]  # only the proxy's


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.usefixtures("no_proxy_env")
def test_a_peer_that_never_answers_times_out_naming_the_host(silent_port: int) -> None:
    error, waits = _fail(f"127.0.0.1:{silent_port}", insecure=True, retries=1, timeout=(5, 0.2))
    assert "GET to 127.0.0.1: timed out" in str(error)
    assert len(waits) == 1


@pytest.mark.usefixtures("no_proxy_env")
def test_tls_mismatches_name_the_host_and_are_not_retried(
    tls_registry: RegistryServer, registry: RegistryServer
) -> None:
    untrusted, waits = _fail(tls_registry.host)
    assert f"talking to {tls_registry.host}: its TLS certificate could not be verified" in str(
        untrusted
    )
    assert "unable to get local issuer certificate" in str(untrusted)
    assert isinstance(untrusted.__cause__, TLSError) and waits == []
    plain, waits = _fail(registry.host)  # HTTPS to a plain-HTTP registry
    assert f"talking to {registry.host}: the registry answered in plain HTTP" in str(plain)
    assert waits == []


@pytest.mark.usefixtures("no_proxy_env")
def test_the_cli_shows_the_cause(tmp_path: Path, local_dns: LocalDNS) -> None:
    result = run_kiln(
        "warm", "--cache-dir", str(tmp_path), "-i", "nosuch.kiln.invalid/base:1",
        prefix=local_dns.prefix,
    )  # fmt: skip
    assert result.returncode == 1
    assert "nosuch.kiln.invalid/base" in result.stderr
    assert "cannot resolve nosuch.kiln.invalid: DNS says the name does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert "nosuch.kiln.invalid" in local_dns.queries
