"""How COPY's cost grows with the depth of the copied tree (issue 11.9).

Why: COPY once re-resolved every destination path from the rootfs root, one ``lstat`` per
component, so a chain of directories N deep cost about N^3 path steps (depth 200: 48 s). This
times the COPY alone (context walk, copying, the layer written from the paths) for chains of
the given depths, each level holding one directory and one file, so a run shows whether the
cost is linear in the number of entries. Run as root from the repository root:

    PYTHONPATH=src python3 bench/deep_copy.py 50 100 200 1000
    PYTHONPATH=src python3 bench/deep_copy.py --flat 1000          # the same entries, flat
    PYTHONPATH=src python3 bench/deep_copy.py --profile 200     # where the time goes
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

from kiln.builder.copy_files import CopyJob
from kiln.builder.effects import CopyEffect
from kiln.context import open_context
from kiln.fs import Changes, write_layer


def make_chain(root: Path, depth: int) -> None:
    """``root/tree/d/d/.../d`` ``depth`` levels deep, a file ``f`` at every level."""
    level = root / "tree"
    for i in range(depth):
        level.mkdir()
        (level / "f").write_text(f"{i}\n")
        level = level / "d"


def make_flat(root: Path, count: int) -> None:
    """The same entries side by side: ``root/tree/dK/f`` for ``count`` values of K."""
    for i in range(count):
        (root / "tree" / f"d{i}").mkdir(parents=True)
        (root / "tree" / f"d{i}" / "f").write_text(f"{i}\n")


def copy_once(work: Path, depth: int, flat: bool = False) -> tuple[float, int]:
    """Seconds COPY took (copy plus layer), and how many paths it wrote."""
    context = work / "ctx"
    context.mkdir()
    (make_flat if flat else make_chain)(context, depth)
    rootfs = work / "rootfs"
    rootfs.mkdir()
    effect = CopyEffect(
        sources=("tree",), dest="/dst/", workdir="/", chown=None, chmod=None, from_=None,
        is_add=False, heredocs=(), line=1,
    )  # fmt: skip
    source = open_context(str(context))
    start = time.perf_counter()
    written = CopyJob(rootfs, effect, "Dockerfile").copy_from(source)
    write_layer(rootfs, Changes(changed=tuple(sorted(set(written)))), work / "layer.tar.gz")
    return time.perf_counter() - start, len(written)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("depths", nargs="+", type=int)
    parser.add_argument("--profile", action="store_true", help="print the top of a profile")
    parser.add_argument(
        "--flat", action="store_true", help="as many entries, one level deep (the baseline)"
    )
    args = parser.parse_args()
    for depth in args.depths:
        work = Path(tempfile.mkdtemp(prefix="kiln-deep-"))
        try:
            if args.profile:
                profile = cProfile.Profile()
                seconds, paths = profile.runcall(copy_once, work, depth, args.flat)
                pstats.Stats(profile).sort_stats("tottime").print_stats(12)
            else:
                seconds, paths = copy_once(work, depth, args.flat)
            shape = "flat " if args.flat else "depth"
            print(f"{shape} {depth:5d}: {paths:5d} paths written in {seconds:7.3f} s", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    os.umask(0o022)
    sys.exit(main())
