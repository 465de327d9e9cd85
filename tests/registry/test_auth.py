"""Bearer and basic auth flows, scripted: tokens per scope, cached, never sent elsewhere."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from kiln.errors import AuthError
from kiln.registry import Credentials
from kiln.registry.auth import Challenge
from tests.registry.scripted import Reply, Seen, scripted_client

OCI = "application/vnd.oci.image.manifest.v1+json"
BEARER = 'Bearer realm="https://auth.test/token",service="registry.test"'
CHALLENGE = Reply(401, {"WWW-Authenticate": BEARER})
MANIFEST = b'{"schemaVersion": 2}'


def token(value: str) -> Reply:
    return Reply(200, {"Content-Type": "application/json"}, json.dumps({"token": value}).encode())


def query(seen: Seen) -> dict[str, list[str]]:
    return parse_qs(urlsplit(seen.url).query)


def test_challenge_parsing() -> None:
    parsed = Challenge.parse(
        'Bearer realm="https://a/t",service="reg",scope="repository:x:pull,push",error=x'
    )
    assert parsed == Challenge(
        "bearer",
        {"realm": "https://a/t", "service": "reg", "scope": "repository:x:pull,push", "error": "x"},
    )
    assert Challenge.parse('Basic realm="r e\\"a"') == Challenge("basic", {"realm": 'r e"a'})
    assert Challenge.parse("") is None


def test_bearer_anonymous_pull_token_cached() -> None:
    ok = Reply(200, {"Content-Type": OCI}, MANIFEST)
    client, adapter, _ = scripted_client([CHALLENGE, token("T1"), ok, ok])
    with client:
        client.get_manifest("lib/app", "v1", [OCI])
        client.get_manifest("lib/app", "v2", [OCI])
    ping, token_request, first, second = adapter.seen
    assert ping.url == "https://registry.test/v2/"
    assert token_request.url.startswith("https://auth.test/token?")
    assert query(token_request) == {
        "service": ["registry.test"],
        "scope": ["repository:lib/app:pull"],
    }
    assert "Authorization" not in token_request.headers
    assert first.headers["Authorization"] == "Bearer T1"
    assert second.headers["Authorization"] == "Bearer T1"


def test_bearer_with_basic_credentials_and_scopes_per_repo() -> None:
    ok = Reply(200, {"Content-Type": OCI}, MANIFEST)
    creds = Credentials("alice", "pw")
    client, adapter, _ = scripted_client(
        [CHALLENGE, token("A"), ok, token("B"), Reply(201)], credentials=creds
    )
    with client:
        client.get_manifest("one", "v1", [OCI])
        client.put_manifest("two", "v1", MANIFEST, OCI)
    token_a, token_b = adapter.seen[1], adapter.seen[3]
    expected_basic = "Basic " + base64.b64encode(b"alice:pw").decode()
    assert token_a.headers["Authorization"] == expected_basic
    assert query(token_a)["scope"] == ["repository:one:pull"]
    assert query(token_a)["account"] == ["alice"]
    assert query(token_b)["scope"] == ["repository:two:pull,push"]
    assert adapter.seen[2].headers["Authorization"] == "Bearer A"
    assert adapter.seen[4].headers["Authorization"] == "Bearer B"


def test_mount_requests_both_scopes() -> None:
    digest = "sha256:" + "b" * 64
    client, adapter, _ = scripted_client(
        [CHALLENGE, token("P"), Reply(404), token("M"), Reply(201)]
    )
    with client:
        client.upload_blob("dst", digest, 3, lambda: io.BytesIO(b"abc"), mount_from="src")
    mount_token, mount = adapter.seen[3], adapter.seen[4]
    assert sorted(query(mount_token)["scope"]) == [
        "repository:dst:pull,push",
        "repository:src:pull",
    ]
    assert mount.method == "POST"
    assert query(mount) == {"mount": [digest], "from": ["src"]}
    assert mount.headers["Authorization"] == "Bearer M"


def test_expired_token_refetched_once_then_auth_error() -> None:
    ok = Reply(200, {"Content-Type": OCI}, MANIFEST)
    client, adapter, _ = scripted_client([CHALLENGE, token("OLD"), CHALLENGE, token("NEW"), ok])
    with client:
        client.get_manifest("app", "v1", [OCI])
    assert adapter.seen[-1].headers["Authorization"] == "Bearer NEW"

    client, _, _ = scripted_client([CHALLENGE, token("X"), CHALLENGE, token("Y"), CHALLENGE])
    with client, pytest.raises(AuthError) as caught:
        client.get_manifest("app", "v1", [OCI])
    assert caught.value.status == 401


def test_token_service_rejection_is_auth_error_without_password() -> None:
    body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "bad creds"}]}).encode()
    client, _, _ = scripted_client(
        [CHALLENGE, Reply(401, {}, body)], credentials=Credentials("alice", "hunter2")
    )
    with client, pytest.raises(AuthError) as caught:
        client.get_manifest("app", "v1", [OCI])
    assert caught.value.code == "UNAUTHORIZED"
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(client)


def test_identity_token_uses_oauth_refresh_grant() -> None:
    ok = Reply(200, {"Content-Type": OCI}, MANIFEST)
    access = Reply(200, {}, json.dumps({"access_token": "ACC", "expires_in": 300}).encode())
    client, adapter, _ = scripted_client(
        [CHALLENGE, access, ok], credentials=Credentials(identity_token="REFRESH")
    )
    with client:
        client.get_manifest("app", "v1", [OCI])
    grant = adapter.seen[1]
    assert grant.method == "POST"
    form = parse_qs(grant.body.decode())
    assert form["grant_type"] == ["refresh_token"]
    assert form["refresh_token"] == ["REFRESH"]
    assert form["scope"] == ["repository:app:pull"]
    assert adapter.seen[2].headers["Authorization"] == "Bearer ACC"


def test_basic_challenge_without_credentials_is_auth_error() -> None:
    basic = Reply(401, {"WWW-Authenticate": 'Basic realm="r"'})
    client, _, _ = scripted_client([basic, basic])
    with client, pytest.raises(AuthError) as caught:
        client.get_manifest("app", "v1", [OCI])
    assert caught.value.status == 401


def test_credentials_that_were_not_sent_are_explained() -> None:
    """Configured credentials a registry never received: the message says so and why."""
    basic = Reply(401, {"WWW-Authenticate": 'Basic realm="r"'})
    token_only = Credentials(identity_token="REFRESH-SECRET", source="/cfg/config.json")
    client, _, _ = scripted_client([basic, basic], credentials=token_only)
    with client, pytest.raises(AuthError) as caught:
        client.get_manifest("app", "v1", [OCI])
    assert (
        "the credentials for registry.test (an identity token, from /cfg/config.json) were not "
        "sent: the registry asks for a user name and password, which they lack"
    ) in str(caught.value)
    assert "REFRESH-SECRET" not in str(caught.value)

    denied = json.dumps({"errors": [{"code": "DENIED", "message": "no"}]}).encode()
    user = Credentials("alice", "hunter2", source="the credential helper docker-credential-x")
    client, _, _ = scripted_client([Reply(200), Reply(403, {}, denied)], credentials=user)
    with client, pytest.raises(AuthError) as caught:
        client.get_manifest("app", "v1", [OCI])
    text = str(caught.value)
    assert (
        "the credentials for registry.test (user 'alice', from the credential helper "
        "docker-credential-x) were not sent: the registry did not ask for any"
    ) in text
    assert text.count("HTTP 403") == 1 and "hunter2" not in text
