"""kiln.net.Session against real servers on loopback: keep-alive, framing, redirects, proxies,
TLS, timeouts and the errors a caller retries on. No timing is asserted."""

from __future__ import annotations

import io
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.errors import (
    ConnectError,
    NameNotFound,
    NetworkTimeout,
    TLSError,
    TooManyRedirects,
    TruncatedBody,
)
from kiln.net import Session, bypass, proxy_for
from kiln.net.proxy import environment_proxies
from tests.support.connect_proxy import PROXIED_NAME, ConnectProxy
from tests.support.http_server import Exchange, HttpServer
from tests.support.local_dns import LocalDNS
from tests.support.registry_server import free_port, make_tls_files

#: Lets the ``/slow`` route answer (set when a test ends).
RELEASE = threading.Event()


def _answer(exchange: Exchange) -> None:
    """The routes the tests below ask for."""
    route, query = exchange.route, exchange.query
    if route == "/hello":
        exchange.reply(200, b"hello")
    elif route == "/chunked":
        exchange.head(200, {"Transfer-Encoding": "chunked"})
        for piece in (b"first,", b"second," * 1000, b"third"):
            exchange.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        exchange.write(b"0\r\nX-Trailer: yes\r\n\r\n")
    elif route == "/truncated":
        exchange.head(200, length=100)
        exchange.write(b"x" * 10)
        exchange.close()
    elif route == "/truncated-chunked":
        exchange.head(200, {"Transfer-Encoding": "chunked"})
        exchange.write(b"10\r\nonly")
        exchange.close()
    elif route == "/slow":
        RELEASE.wait(10)
        exchange.reply(200, b"late")
    elif route == "/drop":  # keep-alive promised, then the server drops it anyway
        exchange.reply(200, b"dropped")
        exchange.close()
    elif route == "/close":
        exchange.reply(200, b"bye", {"Connection": "close"})
        exchange.close()
    elif route == "/redirect":
        exchange.reply(int(query.get("status", "302")), b"", {"Location": query["to"]})
    elif route == "/loop":
        exchange.reply(302, b"", {"Location": "/loop"})
    else:  # /echo
        answer = {
            "method": exchange.method,
            "length": len(exchange.body),
            "body": exchange.body.decode("latin-1"),
            "headers": dict(exchange.headers.items()),
        }
        exchange.reply_json(200, answer)


@pytest.fixture
def server() -> Iterator[HttpServer]:
    RELEASE.clear()
    with HttpServer(_answer) as running:
        try:
            yield running
        finally:
            RELEASE.set()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(tls_files: tuple[Path, Path, Path]) -> Iterator[HttpServer]:
    _, cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with HttpServer(_answer, tls=context) as running:
        yield running


NO_PROXY_ENV: dict[str, str] = {}


def client(**kwargs: object) -> Session:
    kwargs.setdefault("environ", NO_PROXY_ENV)
    return Session(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- connections and framing


def test_keep_alive_reuses_one_connection(server: HttpServer) -> None:
    with client() as http:
        for _ in range(3):
            assert http.request("GET", server.url + "/hello").content == b"hello"
        with http.request("GET", server.url + "/hello", stream=True) as response:
            assert response.read() == b"hello"
        assert http.request("HEAD", server.url + "/hello").content == b""
        assert http.request("GET", server.url + "/hello").status_code == 200
    assert len({seen.port for seen in server.seen}) == 1


def test_a_closed_or_unfinished_connection_is_not_reused(server: HttpServer) -> None:
    with client() as http:
        assert http.request("GET", server.url + "/close").content == b"bye"
        assert http.request("GET", server.url + "/hello").content == b"hello"
    first, second = server.seen
    assert first.port != second.port


def test_an_idle_connection_the_server_dropped_is_replaced(server: HttpServer) -> None:
    with client() as http:
        assert http.request("GET", server.url + "/drop").content == b"dropped"
        for _ in range(3):  # the first finds the pooled connection closed
            assert http.request("GET", server.url + "/hello").content == b"hello"
    assert server.seen[0].port != server.seen[1].port


def test_concurrent_requests_share_the_pool(server: HttpServer) -> None:
    errors: list[BaseException] = []
    with client() as http:

        def work() -> None:
            try:
                for _ in range(5):
                    assert http.request("GET", server.url + "/chunked").content.endswith(b"third")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert len(server.seen) == 20
    assert len({seen.port for seen in server.seen}) <= 4


def test_chunked_response_streamed_and_whole(server: HttpServer) -> None:
    expected = b"first," + b"second," * 1000 + b"third"
    with client() as http:
        with http.request("GET", server.url + "/chunked", stream=True) as response:
            chunks = list(response.iter_content(1000))
        assert b"".join(chunks) == expected
        assert max(len(chunk) for chunk in chunks) <= 1000
        assert http.request("GET", server.url + "/chunked").content == expected
    assert len({seen.port for seen in server.seen}) == 1  # trailers read, connection reused


@pytest.mark.parametrize("path", ["/truncated", "/truncated-chunked"])
def test_a_body_cut_short_raises_the_retryable_error(server: HttpServer, path: str) -> None:
    with client() as http:
        with pytest.raises(TruncatedBody), http.request("GET", server.url + path) as response:
            response.content  # noqa: B018
        with (
            pytest.raises(TruncatedBody),
            http.request("GET", server.url + path, stream=True) as response,
        ):
            for _ in response.iter_content(4):
                pass
        assert http.request("GET", server.url + "/hello").content == b"hello"


def test_read_timeout(server: HttpServer) -> None:
    with client(timeout=(5.0, 0.2)) as http, pytest.raises(NetworkTimeout):
        http.request("GET", server.url + "/slow")


def test_connection_refused_is_a_connect_error_without_credentials() -> None:
    url = f"http://user:s3cret@127.0.0.1:{free_port()}/v2/?token=abc"
    with client() as http, pytest.raises(ConnectError) as caught:
        http.request("GET", url)
    assert "s3cret" not in str(caught.value)
    assert "token" not in str(caught.value)


def test_request_bodies_bytes_and_streams(server: HttpServer, tmp_path: Path) -> None:
    """Bytes go with their length; a stream goes with the length its caller gives, or chunked."""
    data = bytes(range(256)) * 2000
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    with client() as http:
        answer = http.request("PUT", server.url + "/echo", body=data).json()
        assert answer["length"] == len(data)
        length = {"Content-Length": str(len(data))}
        answer = http.request(
            "PUT", server.url + "/echo", body=lambda: blob.open("rb"), headers=length
        ).json()
        assert answer["length"] == len(data)
        assert answer["headers"]["Content-Length"] == str(len(data))
        answer = http.request("PATCH", server.url + "/echo", body=lambda: io.BytesIO(b"abc")).json()
        assert answer["body"] == "abc"
        assert answer["headers"]["Transfer-Encoding"] == "chunked"
        answer = http.request("POST", server.url + "/echo", body=b"").json()
        assert answer["headers"]["Content-Length"] == "0"
    assert len({seen.port for seen in server.seen}) == 1


def test_headers_are_case_insensitive(server: HttpServer) -> None:
    with client() as http:
        response = http.request("GET", server.url + "/echo", headers={"X-Test": "1"})
    assert response.headers["content-type"] == response.headers["Content-Type"]
    assert response.json()["headers"]["X-Test"] == "1"
    assert response.ok


# ---------------------------------------------------------------- redirects


def test_redirect_to_another_host_drops_authorization(server: HttpServer) -> None:
    other = server.url.replace("127.0.0.1", "localhost") + "/echo"
    auth = {"Authorization": "Bearer secret"}
    with client() as http:
        response = http.request(
            "GET", f"{server.url}/redirect?to={other}", headers=auth, follow_redirects=True
        )
        assert "Authorization" not in response.json()["headers"]
        assert response.url == other
        same = http.request(
            "GET", f"{server.url}/redirect?to=/echo", headers=auth, follow_redirects=True
        )
        assert same.json()["headers"]["Authorization"] == "Bearer secret"
        unfollowed = http.request("GET", f"{server.url}/redirect?to=/echo", headers=auth)
        assert unfollowed.status_code == 302


def test_redirect_methods(server: HttpServer) -> None:
    with client() as http:
        kept = http.request(
            "PUT", f"{server.url}/redirect?status=307&to=/echo", body=b"xyz", follow_redirects=True
        ).json()
        assert (kept["method"], kept["body"]) == ("PUT", "xyz")
        reopened = http.request(
            "PUT", f"{server.url}/redirect?status=308&to=/echo",
            body=lambda: io.BytesIO(b"streamed"), follow_redirects=True,
        ).json()  # fmt: skip
        assert (reopened["method"], reopened["body"]) == ("PUT", "streamed")
        changed = http.request(
            "POST", f"{server.url}/redirect?status=303&to=/echo", body=b"xyz",
            follow_redirects=True,
        ).json()  # fmt: skip
        assert (changed["method"], changed["body"]) == ("GET", "")
        with pytest.raises(TooManyRedirects):
            http.request("GET", f"{server.url}/loop", follow_redirects=True)


# ---------------------------------------------------------------- TLS and proxies


def test_https_verified_against_a_ca_file(
    tls_server: HttpServer, tls_files: tuple[Path, Path, Path]
) -> None:
    ca, _, _ = tls_files
    with client(verify=str(ca)) as http:
        assert http.request("GET", tls_server.url + "/hello").content == b"hello"
        assert http.request("GET", tls_server.url + "/hello").content == b"hello"
    assert len({seen.port for seen in tls_server.seen}) == 1
    with client() as http, pytest.raises(TLSError, match="certificate verify failed"):
        http.request("GET", tls_server.url + "/hello")
    with client(verify=False) as http:
        assert http.request("GET", tls_server.url + "/hello").content == b"hello"


def test_https_to_a_plain_http_server_is_a_tls_error(server: HttpServer) -> None:
    with client() as http, pytest.raises(TLSError):
        http.request("GET", server.url.replace("http:", "https:") + "/hello")


def _proxied(base: str) -> str:
    """``base`` with its host replaced by the name only the test proxy resolves."""
    return base.replace("127.0.0.1", PROXIED_NAME)


def test_https_through_a_connect_proxy(
    tls_server: HttpServer, tls_files: tuple[Path, Path, Path]
) -> None:
    ca, _, _ = tls_files
    base = _proxied(tls_server.url)
    with ConnectProxy() as proxy:
        environ = {"HTTPS_PROXY": f"http://puser:p%40ss@127.0.0.1:{proxy.port}"}
        with client(verify=str(ca), environ=environ) as http:
            for _ in range(2):
                assert http.request("GET", base + "/hello").content == b"hello"
        target = base.removeprefix("https://")
        assert [line.rsplit(" ", 1)[0] for line in proxy.log.lines] == [f"CONNECT {target}"]
        assert proxy.log.authorizations == ["Basic cHVzZXI6cEBzcw=="]  # puser:p@ss
    assert "Proxy-Authorization" not in tls_server.seen[0].headers


def test_plain_http_through_a_proxy_uses_the_absolute_form(server: HttpServer) -> None:
    base = _proxied(server.url)
    with ConnectProxy() as proxy:
        environ = {"http_proxy": proxy.url, "HTTP_PROXY": "http://127.0.0.1:1"}
        with client(environ=environ) as http:
            answer = http.request("GET", base + "/hello?x=1").content
        assert answer == f"GET {base}/hello?x=1 HTTP/1.1".encode()  # the absolute form
        assert not server.seen


def _lookup_failure(url: str, environ: dict[str, str]) -> str:
    """Run by ``LocalDNS.call`` in a child: GET ``url``; the ``NameNotFound`` message."""
    with client(environ=environ) as http, pytest.raises(NameNotFound) as caught:
        http.request("GET", url)
    return str(caught.value)


def test_no_proxy_hosts_go_direct(server: HttpServer, local_dns: LocalDNS) -> None:
    """Listed in NO_PROXY, the proxy-only name is looked up directly, and fails to resolve."""
    base = _proxied(server.url)
    with ConnectProxy() as proxy:
        environ = {"HTTP_PROXY": proxy.url, "NO_PROXY": "other.example, .kiln.invalid"}
        assert PROXIED_NAME in local_dns.call(_lookup_failure, base + "/hello", environ)
        assert proxy.log.lines == []
    assert PROXIED_NAME in local_dns.queries  # looked up (by the local server), not proxied


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_never_proxied(server: HttpServer, host: str) -> None:
    """Go's rule: with a dead proxy for every scheme and no NO_PROXY, loopback still works."""
    dead = f"http://127.0.0.1:{free_port()}"
    environ = {"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead, "NO_PROXY": ""}
    with client(environ=environ) as http:
        url = server.url.replace("127.0.0.1", host) + "/hello"
        assert http.request("GET", url).content == b"hello"
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000/v2/",
        "https://127.9.8.7/v2/",
        "http://localhost:5000/",
        "https://[::1]:5000/v2/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_loopback_urls_get_no_proxy(url: str) -> None:
    assert proxy_for(url, {"ALL_PROXY": "http://proxy.example:3128"}) is None


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "expected"),
    [
        ("registry.example.com", None, "example.com", True),
        ("registry.example.com", None, ".example.com", True),
        ("example.com", None, ".example.com", True),
        ("registry.example.com", 5000, "registry.example.com:5000", True),
        ("registry.example.com", 443, "registry.example.com:5000", False),
        ("registry.example.org", None, "example.com, other.net", False),
        ("anything", None, "*", True),
        ("10.1.2.3", None, "10.0.0.0/8", True),
        ("10.1.2.3", None, "10.1.2.3", True),
        ("10.1.2.3", 5000, "10.1.2.3:5000", True),
        ("11.1.2.3", None, "10.0.0.0/8", False),
        ("fd00::5", None, "fd00::/8", True),
        ("2001:db8::1", 5000, "[2001:db8::1]:5000", True),
        ("2001:db8::1", None, "2001:db8::1", True),
        ("2001:db8::2", None, "2001:db8::1", False),
        ("Registry.Example.COM".lower(), None, "EXAMPLE.com", True),
    ],
)
def test_no_proxy_rules(host: str, port: int | None, no_proxy: str, expected: bool) -> None:
    assert bypass(host, port, no_proxy) is expected


def test_proxy_selection_from_the_environment() -> None:
    env = {"HTTPS_PROXY": "http://upper:3128", "https_proxy": "lower:8080", "NO_PROXY": "skip.me"}
    proxy = proxy_for("https://reg.example/v2/", env)
    assert proxy is not None and (proxy.host, proxy.port) == ("lower", 8080)
    assert proxy_for("https://skip.me/v2/", env) is None
    assert proxy_for("http://reg.example/", env) is None  # no HTTP_PROXY set
    assert proxy_for("http://reg.example/", {"ALL_PROXY": "http://all:1"}) is not None
    assert environment_proxies({"no_proxy": "a", "NO_PROXY": "b"})["no"] == "a"
    assert "secret" not in repr(proxy_for("https://x/", {"HTTPS_PROXY": "http://u:secret@p:1"}))
