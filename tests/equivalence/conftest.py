"""Session fixtures of the equivalence suite.

Why one session-wide reference run: buildah is the expensive half. All cases are prepared once
and handed to two buildah workers as soon as the session starts, so they run while kiln builds
the cases one by one in-process; each test then only waits for its own reference result.
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from tests.equivalence.buildah import Buildah, BuildahResult
from tests.equivalence.cases import PARENTS_DIR, Case, load_cases, prepare_context
from tests.support.base_image import make_oci_layout, push_layout
from tests.support.registry_server import RegistryServer

# Files served to `ADD http://...` cases; the fixed mtime becomes their Last-Modified header.
HTTP_FILES = {
    "hello.txt": b"hello over http\n",
    "data.tar": b"not extracted: ADD never unpacks a URL\n",
    "dir/page.html": b"<p>page</p>\n",
}
HTTP_MTIME = 1_600_000_000
REFERENCE_WORKERS = 2


@dataclass(frozen=True)
class Prepared:
    """One case with its prepared context, and its reference build under way."""

    case: Case
    context: Path
    reference: Future[BuildahResult]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local HTTP server for `ADD http://...`; yields its base URL."""
    root = tmp_path_factory.mktemp("http")
    for name, data in HTTP_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (HTTP_MTIME, HTTP_MTIME))
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def substitutions(
    registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory, http_root: str
) -> dict[str, str]:
    """@BASE@, @REG@ and @HTTP@ for the case Dockerfiles (the base image is pushed here)."""
    base = f"{registry.host}/eq/busybox:latest"
    push_layout(make_oci_layout(tmp_path_factory.mktemp("eq-busybox")), "latest", base)
    return {"BASE": base, "REG": registry.host, "HTTP": http_root}


@pytest.fixture(scope="session")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Buildah:
    return Buildah(tmp_path_factory.mktemp("buildah"))


def _push_parents(buildah: Buildah, root: Path, subs: dict[str, str]) -> None:
    """Parent images some cases build FROM (e.g. one with ONBUILD triggers), built by buildah."""
    for directory in sorted(p for p in PARENTS_DIR.iterdir() if p.is_dir()):
        case = Case(directory.name, directory)
        context = prepare_context(case, root / directory.name, subs)
        tag = f"localhost/eq-parent/{directory.name}:latest"
        built = buildah.build(context, tag)
        assert built.returncode == 0, built.stderr
        dest = f"docker://{subs['REG']}/eq/{directory.name}:latest"
        pushed = buildah.push(tag, dest)
        assert pushed.returncode == 0, pushed.stderr


@pytest.fixture(scope="session")
def prepared_cases(
    request: pytest.FixtureRequest,
    substitutions: dict[str, str],
    buildah: Buildah,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Prepared]]:
    """Each selected case's context, with its buildah build submitted to the worker pool."""
    selected = {
        item.callspec.params["case"].name
        for item in request.session.items
        if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)
    }
    root = tmp_path_factory.mktemp("eq-cases")
    _push_parents(buildah, tmp_path_factory.mktemp("eq-parents"), substitutions)
    pool = ThreadPoolExecutor(max_workers=REFERENCE_WORKERS)
    prepared: dict[str, Prepared] = {}
    for case in load_cases():
        if case.name not in selected:
            continue
        context = prepare_context(case, root / "ctx" / case.name, substitutions)
        args = {**case.build_args, **case.env_build_args}
        out = root / "ref" / case.name
        future = pool.submit(
            buildah.build_layout,
            context,
            case.name,
            out,
            build_args=args,
            target=case.target,
            dockerfile=case.reference_dockerfile,
        )
        prepared[case.name] = Prepared(case, context, future)
    yield prepared
    pool.shutdown(wait=True, cancel_futures=True)
