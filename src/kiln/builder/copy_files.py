"""COPY and ADD: put files from the context (or another stage) into the rootfs, Docker's way.

Why here and not in fs: the rules are Dockerfile rules (trailing slash means directory, several
sources need a directory destination, a directory source copies its contents, context files become
root-owned unless --chown), while fs only offers safe path joining and layer writing. Every path
written is reported back so the layer is written from exactly those paths, with no scan.

``defer_files``: when nothing after this COPY reads the rootfs (the last file step of the target
stage), a new regular file is not created at all; it goes into ``deferred`` and the layer writer
reads it from its source (``kiln.fs.SourceFile``). Creating files is most of a big COPY's cost.
Directories, links and files that replace an existing entry are still written for real, and a
later entry of the same COPY that meets a deferred path makes that file real first.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from pathlib import Path
from typing import BinaryIO

from kiln.builder.chmod import parse_chmod
from kiln.builder.copy_target import CopyTarget, Ownership
from kiln.builder.effects import CopyEffect
from kiln.context import BuildContext, IgnoreMatcher, SourceMatch, resolve_sources, walk_source
from kiln.context.archive_source import archive_members, is_archive
from kiln.context.remote_source import download, is_url
from kiln.errors import DockerfileError
from kiln.fs import ProtectedPaths, SourceFile, lookup_chown, secure_join


class CopyJob:
    """One COPY/ADD effect applied to one rootfs; ``copy_from``/``copy_heredocs`` return the
    rootfs-relative paths written, and ``deferred`` the files left to the layer writer."""

    def __init__(
        self,
        rootfs: Path,
        effect: CopyEffect,
        filename: str,
        *,
        keep_owner: bool = False,
        defer_files: bool = False,
        protected: ProtectedPaths | None = None,
    ) -> None:
        self.rootfs = rootfs
        self.effect = effect
        self.filename = filename
        if effect.chown:
            owner = Ownership(*lookup_chown(rootfs, effect.chown))
        else:
            owner = Ownership(None, None) if keep_owner else Ownership(0, 0)
        mode = parse_chmod(effect.chmod) if effect.chmod else None
        self.target = CopyTarget(
            rootfs,
            owner,
            mode,
            filename,
            effect.line,
            defer_files=defer_files,
            protected=protected,
        )

    @property
    def deferred(self) -> dict[str, SourceFile]:
        """Files this copy left uncreated: rootfs-relative path -> its source."""
        return self.target.deferred

    def _error(self, message: str) -> DockerfileError:
        return DockerfileError(message, file=self.filename, line=self.effect.line)

    def destination(self, count: int) -> tuple[str, bool]:
        """The absolute destination and whether it names a directory."""
        dest = self.effect.dest
        absolute = posixpath.join(self.effect.workdir, dest)
        wants_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
        if count > 1 and not wants_dir:
            if self._is_existing_dir(absolute):
                return absolute, True
            raise self._error(
                "When using COPY with more than one source file, "
                "the destination must be a directory and end with a /"
            )
        return absolute, wants_dir or self._is_existing_dir(absolute)

    def _is_existing_dir(self, absolute: str) -> bool:
        return secure_join(self.rootfs, absolute).is_dir()

    def copy_from(self, source: BuildContext) -> list[str]:
        """Copy the effect's sources from a context or stage root; return the paths written."""
        try:
            return self._copy_from(source)
        finally:
            self.target.close()

    def _copy_from(self, source: BuildContext) -> list[str]:
        effect = self.effect
        urls = [s for s in effect.sources if effect.is_add and is_url(s)]
        patterns = [s for s in effect.sources if s not in urls]
        matches = resolve_sources(source, patterns) if patterns else []
        excluded = IgnoreMatcher.from_patterns(effect.exclude) if effect.exclude else None
        if excluded is not None:
            matches = [m for m in matches if not excluded.matches(m.rel_path)]
        dest, is_dir = self.destination(len(matches) + len(urls))
        for url in urls:
            self.copy_url(url, dest, is_dir)
        for match in matches:
            if effect.parents:
                self.copy_match(source, match, posixpath.join(dest, _parents_path(match)), excluded)
            elif match.is_dir:
                self.copy_match(source, match, dest, excluded)
            elif self.unpacks(match.abs_path):
                self.extract(match.abs_path, dest)
            else:
                name = posixpath.basename(match.rel_path.rstrip("/"))
                self.target.copy_entry(
                    match.abs_path, posixpath.join(dest, name) if is_dir else dest
                )
        return self.target.written

    def copy_match(
        self, source: BuildContext, match: SourceMatch, target: str, excluded: IgnoreMatcher | None
    ) -> None:
        """A directory's contents into target (a file source: the file itself to target)."""
        if not match.is_dir:
            self.target.copy_entry(match.abs_path, target)
            return
        target_dir = self.target.ensure_dir(target)
        skipped: list[str] = []
        for rel, abs_path in walk_source(source, match):
            if excluded is not None and (
                excluded.matches(rel) or any(rel.startswith(s + "/") for s in skipped)
            ):
                skipped.append(rel)
                continue
            self.target.copy_entry(abs_path, posixpath.join(target_dir, rel))

    def unpacks(self, path: Path) -> bool:
        """ADD unpacks a local tar archive (any compression) unless --unpack=false."""
        return self.effect.is_add and self.effect.unpack is not False and is_archive(path)

    def extract(self, archive: Path, dest: str) -> None:
        """Unpack archive into the directory dest, like `tar -x` (owners kept unless --chown)."""
        base = self.target.ensure_dir(dest)
        with archive_members(archive) as members:
            for member, content in members:
                name = posixpath.normpath(member.name.lstrip("/"))
                if name in (".", "") or name.startswith("../"):
                    continue
                try:
                    self._extract_member(member, content, base, name)
                except (FileNotFoundError, NotADirectoryError) as exc:
                    # e.g. a member under a symlink to a missing directory
                    where = Path(str(exc.filename))
                    if where.is_relative_to(self.rootfs):
                        where = Path("/", where.relative_to(self.rootfs))
                    raise self._error(
                        f"ADD cannot unpack {member.name!r} from {archive.name}: "
                        f"{exc.strerror}: {where}"
                    ) from None

    def _extract_member(
        self, member: tarfile.TarInfo, content: BinaryIO | None, base: str, name: str
    ) -> None:
        """One archive member to ``base``/``name``, like `tar -x`."""
        absolute = posixpath.join(base, name)
        if member.isdir():
            target = secure_join(self.rootfs, self.target.ensure_dir(absolute, dangling=False))
        elif member.issym() or member.islnk() or content is not None:
            parent = self.target.ensure_dir(posixpath.dirname(absolute), dangling=False)
            if member.islnk():
                linked = secure_join(
                    self.rootfs, posixpath.join(base, posixpath.normpath(member.linkname))
                )
                self.target.guard(linked, f"ADD hard link {member.name!r}")
                if not linked.exists() or linked.is_dir():
                    missing = "a directory" if linked.exists() else "missing"
                    raise self._error(
                        f"ADD cannot unpack hard link {member.name!r}: "
                        f"it points at {member.linkname!r}, which is {missing}"
                    )
            target = self.target.replaceable(posixpath.join(parent, posixpath.basename(name)))
            if member.issym():
                os.symlink(member.linkname, target)
            elif member.islnk():
                os.link(linked, target)
                return  # shares the inode already recorded
            else:
                assert content is not None
                with target.open("wb") as out:
                    shutil.copyfileobj(content, out)
        else:
            return  # devices and fifos are not unpacked by ADD either
        self.target.chown(target, member.uid, member.gid)
        if not member.issym():
            os.chmod(target, member.mode & 0o7777)
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
        self.target.record(target)

    def copy_url(self, url: str, dest: str, is_dir: bool) -> None:
        """ADD http(s)://...: the file as served, mode 0600, dated by Last-Modified."""
        parent_dir = dest if is_dir else posixpath.dirname(dest) or "/"
        parent = self.target.ensure_dir(parent_dir)
        partial = secure_join(self.rootfs, parent) / ".kiln-download"
        self.target.guard(partial, f"ADD destination {parent}")
        fetched = download(url, partial, self.effect.checksum)
        name = fetched.name if is_dir else posixpath.basename(dest)
        target = self.target.replaceable(posixpath.join(parent, name))
        os.replace(partial, target)
        self.target.chown(target, 0, 0)
        os.chmod(target, self.target.mode(0o600, False) if self.target.mode else 0o600)
        if fetched.mtime is not None:
            os.utime(target, (fetched.mtime, fetched.mtime))
        self.target.record(target)

    def copy_heredocs(self) -> list[str]:
        """COPY <<EOF /path: each heredoc becomes a file named after its delimiter."""
        dest, is_dir = self.destination(len(self.effect.heredocs))
        for name, content in self.effect.heredocs:
            target = posixpath.join(dest, name) if is_dir else dest
            parent = self.target.ensure_dir(posixpath.dirname(target) or "/")
            path = self.target.replaceable(posixpath.join(parent, posixpath.basename(target)))
            path.write_text(content)
            self.target.finish(path, 0o644)
        return self.target.written


def _parents_path(match: SourceMatch) -> str:
    """`COPY --parents`: the source keeps its path below the context (or stage) root."""
    return "" if match.rel_path == "." else match.rel_path
