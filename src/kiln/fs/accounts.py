"""Resolve Docker ``USER`` and ``COPY --chown`` specs against the image's own account files.

Why here: names must be looked up in the *image's* ``/etc/passwd`` and ``/etc/group`` (read
through ``secure_join``, since a base image may make them symlinks), never the build host's.

``lookup_user`` follows runc's ``GetExecUser`` (what ``docker run``/``docker build`` use): a
user matches by name or numeric uid; a numeric uid with no passwd entry runs with gid 0; an
explicit group replaces the primary gid and then no supplementary groups are added; otherwise
the supplementary groups are every group in ``/etc/group`` that lists the user's name.

``lookup_file_owner`` follows BuildKit's file operations (``readUser``), which create the
WORKDIR as the current ``USER``: a number is used as it is for both ids (``USER 1000`` makes
``1000:1000``), a name is looked up, and a name with no entry (or no passwd/group file) falls
back to uid 0 / the gid found so far instead of failing. Only RUN refuses an unknown user.

``lookup_home`` is runc's rule for ``HOME``: the matching passwd entry's home directory, ``/``
when the user has none (a numeric uid without an entry).

``lookup_chown`` follows the Dockerfile reference for ``--chown``: names are looked up, numbers
are used as they are, and "a username without groupname or a UID without GID will use the same
numeric UID as the GID".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kiln.errors import BuildError

from .securejoin import secure_join

_MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class PasswdEntry:
    """One ``/etc/passwd`` line (the fields kiln uses)."""

    name: str
    uid: int
    gid: int
    home: str = "/"


@dataclass(frozen=True)
class GroupEntry:
    """One ``/etc/group`` line."""

    name: str
    gid: int
    members: tuple[str, ...]


def lookup_user(rootfs: Path, spec: str) -> tuple[int, int, tuple[int, ...]]:
    """Resolve a ``USER`` spec (``name``, ``uid``, ``name:group``, ``uid:gid`` ...).

    Returns ``(uid, gid, supplementary_gids)``; raises ``BuildError`` for unknown names.
    """
    user_arg, _, group_arg = spec.partition(":")
    group_arg = group_arg.split(":", 1)[0]
    user_arg = user_arg or "0"
    user_num = _parse_id(user_arg)
    users = _matching_users(rootfs, user_arg, user_num)
    if users:
        name, uid, gid = users[0].name, users[0].uid, users[0].gid
    elif user_num is not None:
        name, uid, gid = "", user_num, 0
    else:
        raise BuildError(f"unable to find user {user_arg}: no matching entries in passwd file")
    if group_arg:
        return uid, _resolve_group(rootfs, group_arg), ()
    supplementary = tuple(g.gid for g in read_group(rootfs) if name and name in g.members)
    return uid, gid, supplementary


def lookup_file_owner(rootfs: Path, spec: str) -> tuple[int, int]:
    """The ``(uid, gid)`` a file operation run as ``USER spec`` gives what it creates."""
    user_arg, _, group_arg = spec.partition(":")
    uid = gid = 0
    number = _parse_id(user_arg)
    if number is not None:
        uid = gid = number
    else:
        found = [u for u in read_passwd(rootfs) if u.name == user_arg]
        if found:
            uid, gid = found[0].uid, found[0].gid
    if group_arg:
        number = _parse_id(group_arg)
        if number is not None:
            gid = number
        else:
            groups = [g.gid for g in read_group(rootfs) if g.name == group_arg]
            gid = groups[0] if groups else gid
    return uid, gid


def lookup_home(rootfs: Path, spec: str) -> str:
    """The home directory runc gives a ``USER`` spec: its passwd entry's, else ``/``.

    Why: runc sets ``HOME`` from it when the process environment has none, so ``$HOME`` in a
    RUN step is ``/root`` for root and the user's own directory for others, as in Docker.
    """
    user_arg = spec.partition(":")[0] or "0"
    users = _matching_users(rootfs, user_arg, _parse_id(user_arg))
    return users[0].home if users else "/"


def _matching_users(rootfs: Path, user_arg: str, user_num: int | None) -> list[PasswdEntry]:
    """Passwd entries matching a user name or number, in file order (runc takes the first)."""
    return [
        u
        for u in read_passwd(rootfs)
        if u.name == user_arg or (user_num is not None and u.uid == user_num)
    ]


def lookup_chown(rootfs: Path, spec: str) -> tuple[int, int]:
    """Resolve a ``COPY/ADD --chown`` spec to ``(uid, gid)``; names need the image's files."""
    parts = spec.split(":")
    if len(parts) > 2 or not parts[0]:
        raise BuildError(f"invalid chown string format: {spec}")
    user_arg = parts[0]
    uid = _parse_id(user_arg)
    if uid is None:
        matches = [u.uid for u in read_passwd(rootfs) if u.name == user_arg]
        if not matches:
            raise BuildError(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = matches[0]
    if len(parts) == 1 or not parts[1]:
        return uid, uid
    return uid, _resolve_group(rootfs, parts[1])


def _resolve_group(rootfs: Path, group_arg: str) -> int:
    number = _parse_id(group_arg)
    for group in read_group(rootfs):
        if group.name == group_arg if number is None else group.gid == number:
            return group.gid
    if number is not None:
        return number
    raise BuildError(f"unable to find group {group_arg}: no matching entries in group file")


def read_passwd(rootfs: Path) -> list[PasswdEntry]:
    """Entries of ``rootfs/etc/passwd`` (empty if missing); malformed lines are skipped."""
    entries = []
    for fields in _records(rootfs, "etc/passwd"):
        if len(fields) >= 4:
            uid, gid = _parse_id(fields[2]), _parse_id(fields[3])
            if uid is not None and gid is not None:
                home = fields[5] if len(fields) > 5 else "/"
                entries.append(PasswdEntry(fields[0], uid, gid, home))
    return entries


def read_group(rootfs: Path) -> list[GroupEntry]:
    """Entries of ``rootfs/etc/group`` (empty if missing); malformed lines are skipped."""
    entries = []
    for fields in _records(rootfs, "etc/group"):
        if len(fields) >= 3 and (gid := _parse_id(fields[2])) is not None:
            members = fields[3].split(",") if len(fields) > 3 else []
            entries.append(GroupEntry(fields[0], gid, tuple(m.strip() for m in members if m)))
    return entries


def _records(rootfs: Path, rel: str) -> list[list[str]]:
    path = secure_join(rootfs, rel)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    return [
        line.split(":")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _parse_id(text: str) -> int | None:
    """The number in ``text`` if it is a valid uid/gid, else None (then it is a name)."""
    if not text.isdigit() or not text.isascii():
        return None
    value = int(text)
    if value > _MAX_ID:
        raise BuildError(f"user or group id {text} is out of range (0 to {_MAX_ID})")
    return value
