"""The equivalence cases: one directory each under tests/equivalence/cases/.

Why data, not code: a case is a Dockerfile and a tiny context that any Docker user can read and
run with `docker build`; what differs from the default comparison is stated in `expect.json`
with the reason, next to the case. The keys of `expect.json` (all optional):

- ``build_args``: ``{NAME: VALUE}`` given to both builders; ``env_build_args``: ``{NAME: VALUE}``
  given to kiln as a bare ``--build-arg NAME`` with ``NAME=VALUE`` in its environment (buildah
  gets the value spelled out).
- ``target``: the stage to build.
- ``archives``: ``{"name.tar.gz": "dir"}`` tar archives made from a case directory when the
  context is prepared (compression from the extension: .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz,
  .tar.zst), so no binary files live in the repository.
- ``error``: both builders must fail; kiln's message must contain this text.
- ``docker``: where buildah differs from Docker (BuildKit), Docker's result, asserted instead:
  ``reason`` (required), ``files`` (``{path: {field: value}}`` overriding buildah's entry,
  ``{path: null}`` for a path Docker does not have), ``config`` (``{field: value}``) and
  ``layers`` (Docker's layer count).
- ``reference_dockerfile``: a file of the case that buildah builds instead of ``Dockerfile``,
  for features buildah 1.28 lacks (``COPY --parents``, ``--exclude``, ``ADD --checksum``...):
  it spells Docker's documented result with instructions buildah has; ``docker.reason`` says why.
- ``kiln_warnings``: texts that kiln must log exactly once as warnings (unused build args,
  deprecated syntax).
- ``kiln_mtimes``: ``{path: epoch}`` mtimes kiln must produce (mtimes are otherwise not compared).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CASES_DIR = Path(__file__).parent / "cases"
PARENTS_DIR = Path(__file__).parent / "parents"


@dataclass(frozen=True)
class Case:
    """One equivalence case as read from its directory."""

    name: str
    source: Path
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def build_args(self) -> dict[str, str]:
        return dict(self.expect.get("build_args", {}))

    @property
    def env_build_args(self) -> dict[str, str]:
        return dict(self.expect.get("env_build_args", {}))

    @property
    def target(self) -> str | None:
        return self.expect.get("target")

    @property
    def error(self) -> str | None:
        return self.expect.get("error")

    @property
    def reference_dockerfile(self) -> str:
        return str(self.expect.get("reference_dockerfile", "Dockerfile"))

    @property
    def docker(self) -> dict[str, Any]:
        return dict(self.expect.get("docker", {}))


def load_cases(root: Path = CASES_DIR) -> list[Case]:
    """Every case directory (sorted by name)."""
    cases = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        expect_file = directory / "expect.json"
        expect = json.loads(expect_file.read_text()) if expect_file.exists() else {}
        cases.append(Case(directory.name, directory, expect))
    return cases


def prepare_context(case: Case, dest: Path, substitutions: dict[str, str]) -> Path:
    """Copy the case to dest, fill in @BASE@/@REG@/@HTTP@ and make its archives."""
    shutil.copytree(case.source, dest, symlinks=True)
    (dest / "expect.json").unlink(missing_ok=True)
    for path in sorted(dest.glob("Dockerfile*")):
        data = path.read_bytes()  # bytes: a CRLF or BOM case must reach the builders intact
        for key, value in substitutions.items():
            data = data.replace(f"@{key}@".encode(), value.encode())
        path.write_bytes(data)
    for archive, directory in case.expect.get("archives", {}).items():
        make_archive(dest / archive, dest / directory)
    return dest


def make_archive(path: Path, directory: Path) -> None:
    """A tar of directory's contents (root-owned, sorted), compressed as the name says."""
    name = path.name
    zstd = name.endswith(".zst")
    plain = path.with_name(name.removesuffix(".zst")) if zstd else path
    modes = {".gz": "w:gz", ".tgz": "w:gz", ".bz2": "w:bz2", ".xz": "w:xz"}
    mode = next((m for suffix, m in modes.items() if name.endswith(suffix)), "w")

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(plain, mode) as tar:  # type: ignore[call-overload]
        for entry in sorted(directory.rglob("*")):
            rel = entry.relative_to(directory).as_posix()
            tar.add(entry, arcname=rel, recursive=False, filter=owned_by_root)
    if zstd:
        subprocess.run(["zstd", "-q", "--rm", str(plain), "-o", str(path)], check=True)
