"""Lazy cache hits: a hit downloads no layer; a cached image goes registry to registry.

Real builds against the test registry, seen through a counting proxy (``FaultProxy`` without
faults) so every blob request is on record. A fresh pod (empty cache and work dirs) rebuilding
a cached Dockerfile pushes the same image without a single layer blob GET: the base image's
layers and the cached layers are mounted from their repositories. When only the last RUN
misses, exactly the layers under it are downloaded (a builder stage read only through a cached
COPY --from stays in the registry). A push to another registry streams the blobs through,
leaving none on disk; an OCI layout from a cached build fetches them and unpacks the same. A
damaged blob in the cache repository goes unnoticed by hits (nothing reads it) and stops the
build that reads it, naming it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry_e2e.conftest import unique, write_context
from tests.support.fault_proxy import FaultProxy
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln, skopeo_inspect, umoci_unpack

pytestmark = pytest.mark.registry

DOCKERFILE = """\
FROM {base} AS tools
RUN echo tools > /tools && od -An -tx1 -N16 /dev/urandom > /tools-stamp

FROM {base}
COPY --from=tools /tools /tools
COPY app.py /app/
RUN od -An -tx1 -N16 /dev/urandom > /stamp
ARG LAST=1
RUN echo "$LAST" > /last && od -An -tx1 -N16 /dev/urandom > /last-stamp
"""


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    """Every request of the builds, on record (no faults)."""
    with FaultProxy(registry.host) as counting:
        yield counting


@pytest.fixture(scope="module")
def other_registry() -> Iterator[RegistryServer]:
    """A second registry: no mount can reach it, its blobs must be sent."""
    with RegistryServer() as server:
        yield server


def _build(proxy: FaultProxy, context: Path, pod: Path, *flags: str) -> str:
    """A reproducible build in ``pod`` (its own, empty, work and cache dirs): its digest.
    OCI media types, so that umoci reads a saved layout as it is."""
    result = run_kiln(
        "build", "--reproducible", "--image-format", "oci", "--insecure-registry", proxy.host,
        "--work-dir", str(pod / "work"), "--cache-dir", str(pod / "cache"), *flags, str(context),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1]


def _layers(ref: str) -> list[str]:
    """The image's layer digests (asked of the registry itself: the proxy keeps only one of
    skopeo's Accept headers, and the registry then answers with a schema 1 manifest)."""
    return [layer["digest"] for layer in skopeo_inspect(ref, "--raw")["layers"]]


def _blob_gets(proxy: FaultProxy, digests: list[str]) -> list[str]:
    """The layer blobs of ``digests`` the proxy saw downloaded, one entry per GET."""
    return [
        digest
        for seen in proxy.seen
        for digest in digests
        if seen.method == "GET" and seen.path.endswith(f"/blobs/{digest}")
    ]


def _on_disk(pod: Path, digests: list[str]) -> list[str]:
    """Those of ``digests`` a file under ``pod`` is named after (a blob kept locally)."""
    names = {name for _, _, files in os.walk(pod) for name in files}
    return [d for d in digests if any(d.partition(":")[2] in name for name in names)]


def _context(tmp_path: Path, base: str, extra: str = "") -> Path:
    dockerfile = DOCKERFILE.format(base=base) + extra
    return write_context(tmp_path / "ctx", dockerfile, {"app.py": "1"})


#: A layer larger than one upload chunk (16 MiB): streamed to another registry in chunks.
BIG_LAYER = "RUN head -c 20000000 /dev/urandom > /big\n"


def _cold(proxy: FaultProxy, context: Path, pod: Path, cache_repo: str) -> tuple[str, str]:
    """The first build (every step runs and is cached): (digest, reference pushed)."""
    ref = f"{proxy.host}/{unique()}:cold"
    digest = _build(proxy, context, pod, "-d", ref, "--cache-repo", cache_repo)
    return digest, ref


def test_cached_rebuild_from_empty_pod_downloads_no_layer(
    proxy: FaultProxy, registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    base = base_image.replace(registry.host, proxy.host)
    context = _context(tmp_path, base)
    cache_repo = f"{proxy.host}/{unique()}/cache"
    cold, cold_ref = _cold(proxy, context, tmp_path / "pod1", cache_repo)
    layers = _layers(cold_ref.replace(proxy.host, registry.host))
    proxy.seen.clear()
    warm_ref = f"{proxy.host}/{unique()}:warm"  # another repository: its blobs must come in
    warm = _build(proxy, context, tmp_path / "pod2", "-d", warm_ref, "--cache-repo", cache_repo)
    assert warm == cold
    assert _blob_gets(proxy, layers) == []
    uploads = [s.path for s in proxy.seen if s.method in ("PUT", "PATCH") and "/uploads/" in s.path]
    assert not [p for p in uploads if any(d in p for d in layers)], uploads  # mounted, not sent
    assert proxy.count("POST", "mount=") >= len(layers)
    assert _on_disk(tmp_path / "pod2", layers) == []
    # The pushed image is whole: every blob is readable from its repository, and it unpacks.
    warm_rootfs = umoci_unpack(warm_ref.replace(proxy.host, registry.host), tmp_path / "warm")
    cold_rootfs = umoci_unpack(cold_ref.replace(proxy.host, registry.host), tmp_path / "cold")
    for name in ("tools", "app/app.py", "stamp", "last", "last-stamp", "bin/busybox"):
        assert (warm_rootfs / name).read_bytes() == (cold_rootfs / name).read_bytes(), name


def test_last_run_missing_downloads_only_what_it_stands_on(
    proxy: FaultProxy, registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    base = base_image.replace(registry.host, proxy.host)
    context = _context(tmp_path, base)
    cache_repo = f"{proxy.host}/{unique()}/cache"
    _, cold_ref = _cold(proxy, context, tmp_path / "pod1", cache_repo)
    image_layers = _layers(cold_ref.replace(proxy.host, registry.host))
    tools_ref = f"{proxy.host}/{unique()}:tools"  # the builder stage's own layers
    _build(proxy, context, tmp_path / "tools", "-d", tools_ref, "--target", "tools",
           "--cache-repo", cache_repo)  # fmt: skip
    tools_run = _layers(tools_ref.replace(proxy.host, registry.host))[-1]
    proxy.seen.clear()
    ref = f"{proxy.host}/{unique()}:changed"
    _build(proxy, context, tmp_path / "pod2", "-d", ref, "--cache-repo", cache_repo,
           "--build-arg", "LAST=2")  # fmt: skip
    under_last_run = image_layers[:-1]  # the base, COPY --from, COPY and the first RUN
    fetched = _blob_gets(proxy, [*image_layers, tools_run])
    assert sorted(fetched) == sorted(under_last_run)  # each once, the tools stage's never
    rootfs = umoci_unpack(ref.replace(proxy.host, registry.host), tmp_path / "changed")
    assert (rootfs / "last").read_text() == "2\n"
    assert (rootfs / "tools").read_text() == "tools\n"
    assert (rootfs / "app" / "app.py").read_text() == "1"


def test_cached_image_streams_to_another_registry_and_saves_a_layout(
    proxy: FaultProxy,
    registry: RegistryServer,
    other_registry: RegistryServer,
    base_image: str,
    tmp_path: Path,
) -> None:
    base = base_image.replace(registry.host, proxy.host)
    context = _context(tmp_path, base, BIG_LAYER)
    cache_repo = f"{proxy.host}/{unique()}/cache"
    cold, cold_ref = _cold(proxy, context, tmp_path / "pod1", cache_repo)
    layers = _layers(cold_ref.replace(proxy.host, registry.host))
    proxy.seen.clear()
    elsewhere = f"{other_registry.host}/{unique()}:copy"
    digest = _build(proxy, context, tmp_path / "pod2", "-d", elsewhere, "--cache-repo",
                    cache_repo, "--insecure-registry", other_registry.host)  # fmt: skip
    assert digest == cold
    # Each streamed through once (the big one too, although it goes up in two chunks).
    assert sorted(_blob_gets(proxy, layers)) == sorted(layers)
    assert _on_disk(tmp_path / "pod2", layers) == []  # and never kept
    assert _layers(elsewhere) == layers
    copied = umoci_unpack(elsewhere, tmp_path / "elsewhere")
    assert (copied / "last").read_text() == "1\n"
    # The file outputs need the bytes: a cached build fetches them, and they hold the same.
    layout, tarball = tmp_path / "pod3" / "oci", tmp_path / "pod3" / "image.tar"
    saved = _build(proxy, context, tmp_path / "pod3", "--no-push", "--cache-repo", cache_repo,
                   "--oci-layout-path", str(layout), "--tar-path", str(tarball))  # fmt: skip
    assert saved == cold
    from_tar = f"oci:{tmp_path / 'from-tar'}:x"
    subprocess.run(["skopeo", "copy", f"docker-archive:{tarball}", from_tar],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{layout}:latest",
                    str(tmp_path / "unpacked")], check=True, capture_output=True)  # fmt: skip
    unpacked = tmp_path / "unpacked" / "rootfs"
    for name in ("tools", "app/app.py", "stamp", "last", "last-stamp", "big"):
        assert (unpacked / name).read_bytes() == (copied / name).read_bytes(), name


def test_a_damaged_cached_blob_is_found_when_read_and_only_then(
    proxy: FaultProxy, registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    base = base_image.replace(registry.host, proxy.host)
    context = _context(tmp_path, base)
    cache_repo = f"{proxy.host}/{unique()}/cache"
    cold, cold_ref = _cold(proxy, context, tmp_path / "pod1", cache_repo)
    first_run = _layers(cold_ref.replace(proxy.host, registry.host))[-2]  # unique: random bytes
    hex_ = first_run.partition(":")[2]
    data = registry.workdir / "storage/docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"
    damaged = bytearray(data.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size: only its digest gives it away
    data.write_bytes(bytes(damaged))
    # Hits read no blob: the fully cached rebuild mounts it as it is, none the wiser.
    ref = f"{proxy.host}/{unique()}:warm"
    assert _build(proxy, context, tmp_path / "pod2", "-d", ref, "--cache-repo", cache_repo) == cold
    # The last RUN missing needs the files under it: the damage is found, and the build stops.
    result = run_kiln(
        "build", "--reproducible", "--image-format", "oci", "--insecure-registry", proxy.host,
        "--work-dir", str(tmp_path / "pod3" / "work"), "--cache-dir", str(tmp_path / "pod3" / "c"),
        "-d", f"{proxy.host}/{unique()}:changed", "--cache-repo", cache_repo,
        "--build-arg", "LAST=2", str(context),
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "hashes to sha256:" in result.stderr and first_run in result.stderr, result.stderr
