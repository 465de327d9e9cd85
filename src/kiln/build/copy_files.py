"""COPY and ADD: put files from the context (or another stage) into the rootfs, Docker's way.

Why here and not in fs: the rules are Dockerfile rules (trailing slash means directory, several
sources need a directory destination, a directory source copies its contents, context files become
root-owned unless --chown), while fs only offers safe path joining and layer writing. Every path
written is reported back so the layer is written from exactly those paths, with no scan.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from kiln.build.chmod import parse_chmod
from kiln.build.effects import CopyEffect
from kiln.context import BuildContext, resolve_sources, walk_source
from kiln.errors import BuildError, DockerfileError
from kiln.fs import lookup_chown, secure_join


@dataclass(frozen=True)
class Ownership:
    """Who owns copied entries: a fixed uid/gid (context default 0:0) or the source's own ids."""

    uid: int | None
    gid: int | None


class CopyJob:
    """One COPY/ADD effect applied to one rootfs; collects the rootfs-relative paths it wrote."""

    def __init__(
        self, rootfs: Path, effect: CopyEffect, filename: str, *, keep_owner: bool = False
    ) -> None:
        self.rootfs = rootfs
        self.effect = effect
        self.filename = filename
        self.written: list[str] = []
        if effect.chown:
            uid, gid = lookup_chown(rootfs, effect.chown)
            self.owner = Ownership(uid, gid)
        elif keep_owner:
            self.owner = Ownership(None, None)
        else:
            self.owner = Ownership(0, 0)
        self.mode = parse_chmod(effect.chmod) if effect.chmod else None

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
        matches = resolve_sources(source, list(self.effect.sources))
        dest, is_dir = self.destination(len(matches))
        for match in matches:
            if match.is_dir:
                target_dir = self.ensure_dir(dest)
                for rel, abs_path in walk_source(source, match):
                    self.copy_entry(abs_path, posixpath.join(target_dir, rel))
            else:
                name = posixpath.basename(match.rel_path.rstrip("/"))
                target = posixpath.join(dest, name) if is_dir else dest
                self.copy_entry(match.abs_path, target)
        return self.written

    def copy_heredocs(self) -> list[str]:
        """COPY <<EOF /path: each heredoc becomes a file named after its delimiter."""
        dest, is_dir = self.destination(len(self.effect.heredocs))
        for name, content in self.effect.heredocs:
            target = posixpath.join(dest, name) if is_dir else dest
            parent = self.ensure_dir(posixpath.dirname(target) or "/")
            path = self._replaceable(posixpath.join(parent, posixpath.basename(target)))
            path.write_text(content)
            self._finish(path, 0o644)
        return self.written

    def ensure_dir(self, absolute: str) -> str:
        """Create missing directories along absolute (never following links out of rootfs)."""
        parts = [p for p in absolute.split("/") if p not in ("", ".")]
        real = "/"
        for part in parts:
            candidate = secure_join(self.rootfs, posixpath.join(real, part))
            real = "/" + candidate.relative_to(self.rootfs).as_posix()
            if real == "/.":
                real = "/"
            if candidate.is_dir():
                continue
            if os.path.lexists(candidate):
                raise BuildError(f"cannot copy to {absolute}: {real} exists and is not a directory")
            candidate.mkdir(mode=0o755)
            self._chown(candidate, 0, 0)
            self._record(candidate)
        return real

    def _replaceable(self, absolute: str) -> Path:
        """Resolve a target's parent safely and clear a non-directory entry in the way."""
        parent = secure_join(self.rootfs, posixpath.dirname(absolute) or "/")
        target = parent / posixpath.basename(absolute)
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            target.unlink()
        return target

    def copy_entry(self, src: Path, absolute: str) -> None:
        """Copy one file, link or directory (not its children) to absolute."""
        st = os.lstat(src)
        parent = self.ensure_dir(posixpath.dirname(absolute) or "/")
        absolute = posixpath.join(parent, posixpath.basename(absolute))
        if stat.S_ISDIR(st.st_mode):
            target = secure_join(self.rootfs, absolute)
            if target.is_dir():
                return  # an existing directory keeps its owner and mode
            if os.path.lexists(target):
                target.unlink()
            target.mkdir()
            self._finish(target, stat.S_IMODE(st.st_mode), st)
            return
        target = self._replaceable(absolute)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), target)
            self._chown(target, st.st_uid, st.st_gid)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            self._record(target)
            return
        if not stat.S_ISREG(st.st_mode):
            raise BuildError(f"cannot copy {src}: not a regular file, directory or symlink")
        shutil.copyfile(src, target, follow_symlinks=False)
        self._finish(target, stat.S_IMODE(st.st_mode), st)

    def _finish(self, target: Path, mode: int, st: os.stat_result | None = None) -> None:
        self._chown(target, st.st_uid if st else 0, st.st_gid if st else 0)
        final_mode = self.mode(mode, target.is_dir()) if self.mode else mode
        os.chmod(target, final_mode)
        if st is not None:
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        self._record(target)

    def _chown(self, target: Path, src_uid: int, src_gid: int) -> None:
        uid = self.owner.uid if self.owner.uid is not None else src_uid
        gid = self.owner.gid if self.owner.gid is not None else src_gid
        os.lchown(target, uid, gid)

    def _record(self, target: Path) -> None:
        self.written.append(target.relative_to(self.rootfs).as_posix())
