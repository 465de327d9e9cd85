"""``RegistryClient.confirmed``: only what the registry itself said about a blob counts.

Why: a push skips its HEAD for a confirmed blob, so an upload whose final answer does not name
the blob's digest must not count (the push then asks with a HEAD), and a 404 never does.
"""

from __future__ import annotations

import hashlib
import io

from tests.registry.scripted import Reply, scripted_client

BLOB = b"layer bytes"
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
UPLOAD = Reply(202, {"Location": "/v2/app/blobs/uploads/1"})


def _upload(final: Reply) -> bool:
    client, adapter, _ = scripted_client([Reply(200), Reply(404), UPLOAD, final])
    with client:
        assert not client.confirmed("app", DIGEST)  # a 404 confirms nothing
        client.upload_blob("app", DIGEST, len(BLOB), lambda: io.BytesIO(BLOB))
        assert [seen.method for seen in adapter.seen] == ["GET", "HEAD", "POST", "PUT"]
        return client.confirmed("app", DIGEST) and not client.confirmed("other", DIGEST)


def test_an_upload_counts_only_when_its_answer_names_the_digest() -> None:
    assert _upload(Reply(201, {"Docker-Content-Digest": DIGEST}))
    assert not _upload(Reply(201))
    assert not _upload(Reply(201, {"Docker-Content-Digest": "sha256:" + "0" * 64}))


def test_a_blob_found_by_head_is_confirmed() -> None:
    client, adapter, _ = scripted_client([Reply(200), Reply(200)])
    with client:
        client.upload_blob("app", DIGEST, len(BLOB), lambda: io.BytesIO(BLOB))
        assert client.confirmed("app", DIGEST)
    assert [seen.method for seen in adapter.seen] == ["GET", "HEAD"]
