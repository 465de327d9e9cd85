"""The unpacker's checks against protected paths (the inplace isolation's kept paths).

Why on where an entry *lands*: the inplace isolation unpacks over the container's own `/`, next
to kiln, and ``x -> /kiln`` followed by ``x/file`` names nothing protected. So besides dropping
entries *named* inside a protected path (as Kaniko does: images carry ``/proc``,
``/etc/hosts``...), every entry is checked again after its parent is resolved. Per directory
that costs one cached lookup, so only entries in directories at or above a protected path pay
for the exact check.
"""

from __future__ import annotations

from kiln.errors import UnsafePathError

from .names import OPAQUE_WHITEOUT, WHITEOUT_PREFIX, clean_name, whiteout_target
from .protected import ProtectedPaths
from .tarreader import LNKTYPE, TarEntry


class ProtectedGuard:
    """``ProtectedPaths`` asked about layer entries, with the per-directory answers cached."""

    def __init__(self, protected: ProtectedPaths) -> None:
        self.protected = protected
        self._by_name: dict[str, bool] = {}  # clean parent name -> names below it may be kept
        self._by_real: dict[str, bool] = {}  # real rprefix -> protected paths at or below it

    def named(self, entry: TarEntry, parent_rel: str, base: str) -> bool:
        """True if ``entry`` names (or hardlinks to) a protected path: it is to be dropped."""
        protected = self.protected
        touched = self._by_name.get(parent_rel)
        if touched is None:
            touched = self._by_name[parent_rel] = protected.touches(parent_rel)
        if entry.type == LNKTYPE and protected.covers(link_target(entry)):
            return True
        if not touched:
            return False
        if base == OPAQUE_WHITEOUT:
            return protected.covers(parent_rel)
        if base.startswith(WHITEOUT_PREFIX):
            base = whiteout_target(base) or base
        return protected.covers(f"{parent_rel}/{base}" if parent_rel else base)

    def guarded(self, rprefix: str) -> bool:
        """Protected paths lie in or below the real directory ``rprefix`` (cached)."""
        guarded = self._by_real.get(rprefix)
        if guarded is None:
            guarded = self._by_real[rprefix] = self.protected.touches(rprefix)
        return guarded

    def refuse(self, entry: TarEntry, real_rel: str) -> None:
        """Raise if ``entry``, resolved to ``real_rel``, lands on a protected path."""
        if self.protected.covers(real_rel):
            raise self.protected.refuse(f"layer entry {entry.name!r}", real_rel)


def link_target(entry: TarEntry) -> str:
    """A hardlink's target, rootfs-relative; the error names the link, not only its target."""
    try:
        return clean_name(entry.linkname)
    except UnsafePathError as exc:
        raise UnsafePathError(
            f"hardlink {entry.name!r} points at {entry.linkname!r}, which climbs out of the root "
            "filesystem",
            hint=exc.hint,
        ) from None
