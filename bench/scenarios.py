"""The benchmark's inputs: base images in the local registry and one context per scenario.

Why generated: every builder must see byte-identical inputs, and the inputs (150,000 files, a
400 MB context) are too big for a repository. Generated once under the work directory and reused
by later harness runs (delete the directory to regenerate).
"""

from __future__ import annotations

import io
import os
import random
import resource
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.base_image import make_oci_layout, push_layout

BIG_HALF = 512 * 1024 * 1024
MANY_DIRS, FILES_PER_DIR = 1500, 100
TREE_DIRS, TREE_FILES_PER_DIR, TREE_FILE_SIZE = 400, 100, 10_000
SOURCE_DIRS, SOURCE_FILES_PER_DIR, DEPS_MB = 20, 15, 64


@dataclass(frozen=True)
class Scenario:
    """A build: its context directory; ``keeps_state`` means "reuse the previous run's store"."""

    name: str
    context: Path
    keeps_state: bool = False
    #: ``"change"``/``"same"``: a registry-cache rebuild scenario (see ``cache_rebuild.py``)
    rebuild: str = ""


def push_bases(work: Path, registry: str, names: list[str]) -> dict[str, str]:
    """busybox and (if a scenario needs it) the 150,000-file image; returns name -> reference."""
    busybox = make_oci_layout(_fresh(work / "base-busybox"))
    refs = {"busybox": f"{registry}/bench/busybox:latest", "many": f"{registry}/bench/many:latest"}
    push_layout(busybox, "latest", refs["busybox"])
    if not any(name.startswith("many-files") for name in names):
        return refs
    many_layer = work / "many-files.tar"
    if not many_layer.exists():
        _many_files_tar(many_layer)
    many = work / "base-many" / "oci"
    if not many.exists():
        _fresh(many.parent)
        subprocess.run(["cp", "-a", str(busybox), str(many)], check=True)
        subprocess.run(
            ["umoci", "raw", "add-layer", "--image", f"{many}:latest", str(many_layer)], check=True
        )
    push_layout(many, "latest", refs["many"])
    return refs


def make_scenarios(work: Path, bases: dict[str, str], names: list[str]) -> list[Scenario]:
    """Write each named scenario's context (Dockerfile and files) and return them in order."""
    made = []
    for name in names:
        context = work / "ctx" / name
        context.mkdir(parents=True, exist_ok=True)
        dockerfile, keeps = _DOCKERFILES[name](context, bases)
        (context / "Dockerfile").write_text(dockerfile)
        made.append(Scenario(name, context, keeps, _REBUILDS.get(name, "")))
    return made


def _tiny(context: Path, bases: dict[str, str]) -> tuple[str, bool]:
    (context / "a.txt").write_text("a\n")
    (context / "b.txt").write_text("b\n")
    return (
        f"FROM {bases['busybox']}\nENV APP=tiny\nWORKDIR /app\nCOPY a.txt b.txt ./\n"
        'RUN echo built > built.txt\nRUN rm b.txt\nCMD ["cat", "/app/built.txt"]\n',
        False,
    )


def _touch_runs(word: str) -> str:
    return "".join(f"RUN echo {word}{i} > /many/d{i * 7}/f{i}\n" for i in range(5))


def _many_base(context: Path, bases: dict[str, str]) -> tuple[str, bool]:
    return f"FROM {bases['many']}\n{_touch_runs('first')}", False


def _many_rebuild(context: Path, bases: dict[str, str]) -> tuple[str, bool]:
    return f"FROM {bases['many']}\n{_touch_runs('second')}", True


def _big(context: Path, bases: dict[str, str]) -> tuple[str, bool]:
    return (
        f"FROM {bases['busybox']}\n"
        f"RUN head -c {BIG_HALF} /dev/urandom > /random.bin && "
        f"yes 'kiln benchmark compressible line' | head -c {BIG_HALF} > /text.bin\n",
        False,
    )


def _copy_tree(context: Path, bases: dict[str, str]) -> tuple[str, bool]:
    tree = context / "tree"
    if not tree.exists():
        rng = random.Random(6)
        partial = context / "tree.partial"
        for d in range(TREE_DIRS):
            directory = partial / f"d{d:03}"
            directory.mkdir(parents=True, exist_ok=True)
            for f in range(TREE_FILES_PER_DIR):
                half = TREE_FILE_SIZE // 2
                data = rng.randbytes(half) + (b"compressible %d\n" % f) * (half // 16)
                (directory / f"f{f:03}").write_bytes(data[:TREE_FILE_SIZE])
        os.rename(partial, tree)
    return f"FROM {bases['busybox']}\nCOPY tree /tree\n", False


def _multi(context: Path, bases: dict[str, str]) -> tuple[str, bool]:
    loops = _awk_loops_for(5.0)
    stages = "".join(
        f"FROM {bases['busybox']} AS s{i}\n"
        f"RUN busybox awk 'BEGIN {{ for (i = 0; i < {loops}; i++) s += i; print s, {i} }}' > r{i}\n"
        for i in range(3)
    )
    final = f"FROM {bases['busybox']}\n" + "".join(
        f"COPY --from=s{i} /r{i} /r{i}\n" for i in range(3)
    )
    return stages + final, False


def _service(context: Path, bases: dict[str, str]) -> tuple[str, bool]:
    """A service as CI builds it: dependencies, sources, a build, a slim final stage.

    The base comes through the counting relay (``busybox-relay``) so its pull is counted too.
    ``KILN_BENCH_SMALL=1`` shrinks the dependency step (for the smoke test).
    """
    small = os.environ.get("KILN_BENCH_SMALL") == "1"
    loops = _awk_loops_for(0.3 if small else 8.0)
    megabytes = 2 if small else DEPS_MB
    write_sources(context)
    base = bases["busybox-relay"]
    return (
        f"FROM {base} AS build\n"
        "WORKDIR /app\n"
        f"RUN mkdir /deps && busybox awk 'BEGIN {{ for (i = 0; i < {loops}; i++) s += i; "
        "print s }' > /deps/checksum && "
        f"for i in $(seq {megabytes}); do head -c 1048576 /dev/urandom > /deps/lib$i.so; done\n"
        "COPY src /app/src\n"
        "RUN mkdir /out && cp /deps/checksum /out/deps.txt && md5sum src/*/* > /out/manifest && "
        "tar -czf /out/app.tgz src\n"
        f"FROM {base}\n"
        "COPY --from=build /out /app\n"
        'CMD ["cat", "/app/manifest"]\n',
        False,
    )


def write_sources(context: Path) -> None:
    """A few hundred small source files (deterministic), written afresh: undoes any change."""
    rng = random.Random(13)
    for d in range(SOURCE_DIRS):
        directory = context / "src" / f"pkg{d:02}"
        directory.mkdir(parents=True, exist_ok=True)
        for f in range(SOURCE_FILES_PER_DIR):
            words = " ".join(f"w{rng.randrange(10_000)}" for _ in range(200))
            (directory / f"mod{f:02}.txt").write_text(f"module {d}.{f}\n{words}\n")


def change_source(context: Path, token: str) -> None:
    """The one-file edit of ``ci-rebuild``; ``token`` makes each run's edit new to the cache."""
    with (context / "src" / "pkg00" / "mod00.txt").open("a") as source:
        source.write(f"changed {token}\n")


_REBUILDS = {"ci-rebuild": "change", "no-change": "same"}

_DOCKERFILES = {
    "tiny": _tiny,
    "many-files-base": _many_base,
    "many-files-rebuild": _many_rebuild,
    "big-layer": _big,
    "copy-tree": _copy_tree,
    "multi-stage": _multi,
    "ci-rebuild": _service,
    "no-change": _service,
}
SCENARIOS = list(_DOCKERFILES)


def _awk_loops_for(seconds: float) -> int:
    """Iterations of a busybox awk loop that take ``seconds`` of one core here (calibrated).

    One process per stage, so a stage uses one core and stages can only gain by running side
    by side (a ``head | md5sum`` pipe already kept both cores busy within one stage). Calibrated
    on the probe's CPU time, not its wall time: on this shared machine a busy moment would
    otherwise shrink the loop (the first ci-rebuild run got ~5 s of CPU for "8 s").
    """
    probe = 4_000_000
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        ["busybox", "awk", f"BEGIN {{ for (i = 0; i < {probe}; i++) s += i; print s }}"],
        check=True,
        capture_output=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return int(probe * seconds / max(used, 0.01)) // 1000 * 1000


def _many_files_tar(path: Path) -> None:
    """A layer tar with /many/dNNNN/fNN: 150,000 small files in 1,500 directories."""
    partial = path.with_suffix(".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        top = tarfile.TarInfo("many")
        top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
        tar.addfile(top)
        for d in range(MANY_DIRS):
            info = tarfile.TarInfo(f"many/d{d}")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
            tar.addfile(info)
            for f in range(FILES_PER_DIR):
                data = b"file %d of directory %d\n" % (f, d)
                info = tarfile.TarInfo(f"many/d{d}/f{f}")
                info.size, info.mode, info.mtime = len(data), 0o644, 1_600_000_000
                tar.addfile(info, io.BytesIO(data))
    os.rename(partial, path)


def _fresh(path: Path) -> Path:
    subprocess.run(["rm", "-rf", str(path)], check=True)
    path.mkdir(parents=True)
    return path


def write_floor_inputs(work: Path) -> tuple[Path, Path]:
    """The big layer's bytes as one file (same sizes and kinds as the RUN writes)."""
    big = work / "floor-big.bin"
    if not big.exists():
        subprocess.run(
            f"head -c {BIG_HALF} /dev/urandom > {big}.partial && "
            f"yes 'kiln benchmark compressible line' | head -c {BIG_HALF} >> {big}.partial && "
            f"mv {big}.partial {big}",
            shell=True,
            check=True,
        )
    return big, work / "ctx" / "copy-tree" / "tree"
