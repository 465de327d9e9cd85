"""Retries: transient failures are retried with backoff, permanent ones are not."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from kiln.errors import AuthError, ConnectError, RegistryDiagnostic, RegistryError, TruncatedBody
from kiln.registry.problems import retry_after
from kiln.registry.retry import RetryPolicy
from tests.registry.scripted import Reply, scripted_client

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/x"}).encode()
OCI = "application/vnd.oci.image.manifest.v1+json"
PING = Reply(200)


def manifest_reply() -> Reply:
    return Reply(200, {"Content-Type": OCI}, MANIFEST)


def test_5xx_then_success() -> None:
    client, adapter, sleeps = scripted_client(
        [PING, Reply(503), Reply(502), Reply(500), manifest_reply()]
    )
    with client:
        data, media_type, digest = client.get_manifest("app", "v1", [OCI])
    assert data == MANIFEST
    assert media_type == OCI
    assert digest == "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    assert len(adapter.seen) == 5
    assert len(sleeps) == 3
    # exponential: each delay lies in [base*2**n/2, base*2**n]
    for attempt, delay in enumerate(sleeps):
        full = 0.5 * 2**attempt
        assert full / 2 <= delay <= full


def test_gives_up_after_retries_with_status() -> None:
    body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "down"}]}).encode()
    client, adapter, sleeps = scripted_client([PING] + [Reply(503, {}, body)] * 3, retries=2)
    with client, pytest.raises(RegistryError) as caught:
        client.get_manifest("app", "v1", [OCI])
    assert caught.value.status == 503
    assert caught.value.code == "UNAVAILABLE"
    assert "down" in str(caught.value)
    assert len(sleeps) == 2
    assert not adapter.steps


@pytest.mark.parametrize("status", [400, 404, 405, 409])
def test_other_4xx_not_retried(status: int) -> None:
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "nope"}]}).encode()
    client, adapter, sleeps = scripted_client([PING, Reply(status, {}, body)])
    with client, pytest.raises(RegistryError) as caught:
        client.get_manifest("app", "v1", [OCI])
    assert type(caught.value) is RegistryError
    assert caught.value.status == status
    assert caught.value.code == "MANIFEST_UNKNOWN"
    assert caught.value.reference == "registry.test/app:v1"
    assert sleeps == []
    assert len(adapter.seen) == 2


def test_429_honours_retry_after() -> None:
    client, _, sleeps = scripted_client(
        [PING, Reply(429, {"Retry-After": "7"}), Reply(408), manifest_reply()]
    )
    with client:
        client.get_manifest("app", "v1", [OCI])
    assert sleeps[0] == 7.0
    assert sleeps[1] <= 1.0


def test_connection_errors_retried_then_reported() -> None:
    fail = ConnectError("refused")
    client, _, sleeps = scripted_client([PING, fail, fail, manifest_reply()])
    with client:
        assert client.get_manifest("app", "v1", [OCI])[0] == MANIFEST
    assert len(sleeps) == 2

    client, _, sleeps = scripted_client([PING, fail, fail], retries=1)
    with client, pytest.raises(RegistryError, match="failed after 2 attempts") as caught:
        client.get_manifest("app", "v1", [OCI])
    assert caught.value.status is None


def test_an_answer_cut_short_is_retried() -> None:
    cut = TruncatedBody("the body ended 20 bytes early")
    client, adapter, sleeps = scripted_client([cut, PING, manifest_reply()])
    with client:  # the ping's body was cut short (a non-streamed request): sent again
        assert client.get_manifest("app", "v1", [OCI])[0] == MANIFEST
    assert len(sleeps) == 1 and len(adapter.seen) == 3

    cut_manifest = Reply(200, {"Content-Type": OCI}, MANIFEST, fail_after=10)
    client, adapter, sleeps = scripted_client([PING, cut_manifest, manifest_reply()])
    with client:  # the streamed manifest's body was cut short: fetched again
        assert client.get_manifest("app", "v1", [OCI])[0] == MANIFEST
    assert len(sleeps) == 1 and len(adapter.seen) == 3

    client, _, _ = scripted_client([PING, cut_manifest, cut_manifest], retries=1)
    with client, pytest.raises(RegistryError, match="failed after 2 attempts"):
        client.get_manifest("app", "v1", [OCI])


def test_upload_retry_reopens_the_stream() -> None:
    blob = b"x" * (2 * 1024 * 1024)  # above the in-memory threshold: streamed from the opener
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    opened: list[int] = []

    def opener() -> io.BytesIO:
        opened.append(1)
        return io.BytesIO(blob)

    client, adapter, _ = scripted_client(
        [
            PING,
            Reply(404),  # HEAD: not there
            Reply(202, {"Location": "/v2/app/blobs/uploads/uuid?_state=abc"}),
            Reply(500),
            Reply(201),
        ]
    )
    with client:
        client.upload_blob("app", digest, len(blob), opener)
    assert len(opened) == 2
    puts = [seen for seen in adapter.seen if seen.method == "PUT"]
    assert [len(seen.body) for seen in puts] == [len(blob), len(blob)]
    quoted = digest.replace(":", "%3A")
    assert puts[-1].url == (
        f"https://registry.test/v2/app/blobs/uploads/uuid?_state=abc&digest={quoted}"
    )


def test_403_is_auth_error_not_retried() -> None:
    client, _, sleeps = scripted_client([PING, Reply(403)])
    with client, pytest.raises(AuthError) as caught:
        client.get_manifest("app", "v1", [OCI])
    assert caught.value.status == 403
    assert sleeps == []


def test_retry_after_parsing() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert RetryPolicy(max_delay=2.0).delay(10) <= 2.0


def test_interrupted_download_restarts_into_seekable_dest() -> None:
    blob = bytes(range(256)) * 40
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    client, adapter, sleeps = scripted_client(
        [PING, Reply(200, {}, blob, fail_after=1000), Reply(200, {}, blob)]
    )
    dest = io.BytesIO(b"prefix:")
    dest.seek(0, io.SEEK_END)
    with client:
        assert client.fetch_blob("app", digest, dest) == len(blob)
    assert dest.getvalue() == b"prefix:" + blob
    assert len(sleeps) == 1
    assert len(adapter.seen) == 3


class _Unseekable(io.BytesIO):
    def seekable(self) -> bool:
        return False


def test_interrupted_download_into_pipe_is_an_error() -> None:
    blob = b"z" * 5000
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    client, _, _ = scripted_client([PING, Reply(200, {}, blob, fail_after=100)])
    with client, pytest.raises(RegistryError, match="interrupted"):
        client.fetch_blob("app", digest, _Unseekable())


def test_oversized_manifest_refused() -> None:
    huge = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    client, _, _ = scripted_client([PING, Reply(200, {"Content-Type": OCI}, huge)])
    with client, pytest.raises(RegistryError, match="manifest larger than"):
        client.get_manifest("app", "v1", [OCI])


def test_every_diagnostic_is_kept_with_whether_it_is_temporary() -> None:
    errors = [
        {"code": "UNAVAILABLE", "message": "down"},
        {"code": "TOOMANYREQUESTS", "message": "slow down", "detail": {"limit": 5}},
    ]
    body = json.dumps({"errors": errors}).encode()
    client, _, _ = scripted_client([PING, Reply(503, {}, body)], retries=0)
    with client, pytest.raises(RegistryError) as caught:
        client.get_manifest("app", "v1", [OCI])
    assert caught.value.diagnostics == (
        RegistryDiagnostic("UNAVAILABLE", "down"),
        RegistryDiagnostic("TOOMANYREQUESTS", "slow down", {"limit": 5}),
    )
    assert caught.value.temporary and caught.value.code == "UNAVAILABLE"
    assert "down; slow down" in str(caught.value)

    client, _, _ = scripted_client([PING, Reply(404, {}, body)], retries=0)
    with client, pytest.raises(RegistryError) as caught:
        client.get_manifest("app", "v1", [OCI])
    assert not caught.value.temporary and len(caught.value.diagnostics) == 2
