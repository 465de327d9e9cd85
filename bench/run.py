#!/usr/bin/env python3
"""kiln's benchmark: each scenario built cold by kiln, buildah, Docker BuildKit, Kaniko; pushed.

Usage (as root, from the repository):  python3 bench/run.py [--scenarios tiny,big-layer]
[--builders kiln,buildah,docker,kaniko] [--runs N] [--work DIR] [--no-floors] [--kiln-args "..."]
[--kiln-src kiln-NAME=DIR]

Why a harness in the repository: speed claims need the same inputs, the same registry and the
same machine for every builder, measured in interleaved runs (A B C, then B C A, ...) because
this machine's disk speed drifts. It prints, per scenario, each builder's median wall and CPU
time, kiln's ratio to each peer, kiln's peak RSS, and the hardware floors (pigz -p2 over the big
layer's bytes, tar | pigz -p2 over the copy-tree context), and for the registry-cache rebuilds
(ci-rebuild, no-change) the bytes each builder downloaded and uploaded. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from builders import REPO, Buildah, Docker, Kaniko, Kiln
from cache_rebuild import measure_rebuild
from measure import CommandFailed, Sample, run_measured
from scenarios import SCENARIOS, Scenario, make_scenarios, push_bases, write_floor_inputs
from tests.support.registry_server import RegistryServer
from tests.support.relay import Relay
from trash import Trash


def main() -> int:
    args = _parse()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    names = args.scenarios.split(",")
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        sys.exit(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    if "many-files-rebuild" in names and "many-files-base" not in names:
        sys.exit("many-files-rebuild rebuilds after many-files-base; ask for both")
    trash = Trash(work / "trash")
    trash.settle_leftovers()
    registry = RegistryServer(workdir=_fresh_dir(work / "registry"))
    relay = Relay(registry.host)
    hosts = f"{registry.host},{relay.host}"
    builders: list[Kiln | Buildah | Docker | Kaniko] = []
    try:
        print(f"registry {registry.host}, relay {relay.host}; inputs under {work}", flush=True)
        bases = push_bases(work, registry.host, names)
        bases["busybox-relay"] = bases["busybox"].replace(registry.host, relay.host, 1)
        scenarios = make_scenarios(work, bases, names)
        other_kilns = dict(_named_source(spec) for spec in args.kiln_src)
        for name in args.builders.split(","):
            if name == "kiln":
                src = _frozen_source(work) if args.freeze_source else REPO / "src"
                builders.append(Kiln(work, hosts, shlex.split(args.kiln_args), src, trash))
            elif name in other_kilns:
                builders.append(
                    Kiln(
                        work,
                        hosts,
                        shlex.split(args.kiln_args),
                        other_kilns[name],
                        trash,
                        name,
                    )
                )
            elif name == "buildah":
                builders.append(Buildah(work, registry.host, trash))
            elif name == "docker":
                builders.append(Docker(work, registry.host, trash))
            elif name == "kaniko":
                builders.append(Kaniko(work, trash))
            else:
                sys.exit(f"unknown builder {name!r}")
        results: dict[tuple[str, str], list[Sample]] = {}
        failed: set[tuple[str, str]] = set()  # not measured again, shown as "-"
        for run in range(args.runs):
            order = builders[run % len(builders) :] + builders[: run % len(builders)]
            for builder in order:
                for scenario in scenarios:
                    if (scenario.name, builder.name) in failed:
                        continue
                    try:
                        if scenario.rebuild:
                            sample = measure_rebuild(builder, scenario, relay, run)
                        else:
                            if not scenario.keeps_state:
                                builder.reset()
                            ref = f"{registry.host}/bench/{scenario.name}:{builder.name}-{run}"
                            sample = builder.build(scenario.context, ref)
                    except CommandFailed as exc:  # e.g. an older kiln without the layer cache
                        failed.add((scenario.name, builder.name))
                        print(f"{scenario.name} {builder.name} FAILED: {exc}", flush=True)
                        continue
                    results.setdefault((scenario.name, builder.name), []).append(sample)
                    print(
                        f"run {run + 1}/{args.runs} {scenario.name:<18} {builder.name:<8} "
                        f"wall {sample.wall:7.2f}s cpu {sample.cpu:7.2f}s"
                        + (f" rss {sample.rss_mib:6.1f} MiB" if sample.rss_mib else "")
                        + (
                            f" registry down {_mb(sample.downloaded)} up {_mb(sample.uploaded)} MB"
                            if scenario.rebuild
                            else ""
                        ),
                        flush=True,
                    )
        floors = {} if args.no_floors else _floors(work, scenarios, args.runs, trash)
        print()
        print(_table(names, [b.name for b in builders], results, floors))
        traffic = [s.name for s in scenarios if s.rebuild]
        if traffic:
            print("\nregistry traffic of the measured rebuild, MB downloaded / uploaded:")
            print(_traffic_table(traffic, [b.name for b in builders], results))
        if floors:
            print("\nfloors: " + "; ".join(f"{n}: {_FLOOR_NAMES[n]}" for n in floors))
    finally:
        for builder in builders:
            builder.close()
        relay.close()
        registry.stop()
        trash.empty()
    return 0


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--builders", default="kiln,buildah,docker", help="also: kaniko")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/kiln-bench"))
    parser.add_argument("--no-floors", action="store_true", help="skip the pigz floors")
    parser.add_argument("--kiln-args", default="", help="extra kiln build flags")
    parser.add_argument(
        "--freeze-source",
        action="store_true",
        help="run a copy of src/ taken at start (so edits during a long run do not leak in)",
    )
    parser.add_argument(
        "--kiln-src",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="another kiln to compare, run from DIR (a copy of an older src/, e.g. from "
        "`git worktree add`); name it in --builders, e.g. --builders kiln,kiln-before",
    )
    return parser.parse_args()


def _named_source(spec: str) -> tuple[str, Path]:
    name, sep, directory = spec.partition("=")
    if not sep or not name.startswith("kiln-") or not (Path(directory) / "kiln").is_dir():
        sys.exit(f"--kiln-src wants kiln-NAME=DIR with DIR/kiln a kiln source tree, not {spec!r}")
    return name, Path(directory).resolve()


#: What each scenario's floor measures: the same work done by the fastest plain tools.
_FLOOR_NAMES = {
    "many-files-base": "GNU tar -x of the 150,000-file layer (uncompressed) onto this disk",
    "big-layer": "pigz -p2 over a file with the big layer's bytes",
    "copy-tree": "tar c | pigz -p2 of the copy-tree context",
    "multi-stage": "the three stages' RUN commands run side by side straight on the host",
}


def _floors(work: Path, scenarios: list[Scenario], runs: int, trash: Trash) -> dict[str, Sample]:
    floors: dict[str, Sample] = {}
    big, tree = write_floor_inputs(work)
    log = work / "floors.log"
    extract_to, many = work / "floor-extract", work / "many-files.tar"
    trash.discard(extract_to)
    jobs = {
        "many-files-base": f"mkdir {extract_to} && tar -x -f {many} -C {extract_to}",
        "big-layer": f"pigz -p2 -c {big} > /dev/null",
        "copy-tree": f"tar -C {tree.parent} -c {tree.name} | pigz -p2 > /dev/null",
    }
    for scenario in scenarios:
        if scenario.name == "multi-stage":
            runs_in = _fresh_dir(work / "floor-multi")  # the RUNs write relative paths
            commands = _run_lines(scenario.context / "Dockerfile")
            jobs["multi-stage"] = f"cd {runs_in} && " + _side_by_side(commands)
    for scenario in scenarios:
        command = jobs.get(scenario.name)
        if command is None:
            continue
        samples = []
        for _ in range(runs):
            samples.append(run_measured(["sh", "-c", command], log=log))
            trash.discard(extract_to)
        floors[scenario.name] = _median(samples)
    return floors


def _run_lines(dockerfile: Path) -> list[str]:
    return [line[4:] for line in dockerfile.read_text().splitlines() if line.startswith("RUN ")]


def _side_by_side(commands: list[str]) -> str:
    return " ".join(f"( {c} ) > /dev/null &" for c in commands) + " wait"


def _median(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.wall for s in samples),
        statistics.median(s.cpu for s in samples),
        max(s.rss_mib for s in samples),
        int(statistics.median(s.downloaded for s in samples)),
        int(statistics.median(s.uploaded for s in samples)),
    )


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f}"


def _traffic_table(
    names: list[str], builders: list[str], results: dict[tuple[str, str], list[Sample]]
) -> str:
    rows = [["scenario", *builders]]
    for name in names:
        medians = {b: _median(results[(name, b)]) for b in builders if (name, b) in results}
        rows.append(
            [name]
            + [
                f"{_mb(medians[b].downloaded)} / {_mb(medians[b].uploaded)}"
                if b in medians
                else "-"
                for b in builders
            ]
        )
    return _align(rows)


def _table(
    names: list[str],
    builders: list[str],
    results: dict[tuple[str, str], list[Sample]],
    floors: dict[str, Sample],
) -> str:
    peers = [b for b in builders if b != "kiln"]
    head = ["scenario"] + [f"{b} wall/cpu s" for b in builders]
    head += [f"kiln/{p}" for p in peers] + ["kiln peak RSS", "floor"]
    rows = [head]
    for name in names:
        medians = {b: _median(results[(name, b)]) for b in builders if (name, b) in results}
        row = [name] + [
            f"{medians[b].wall:.2f} / {medians[b].cpu:.2f}" if b in medians else "-"
            for b in builders
        ]
        kiln = medians.get("kiln")
        row += [
            f"{kiln.wall / medians[p].wall:.2f}" if kiln and p in medians else "-" for p in peers
        ]
        row.append(f"{kiln.rss_mib:.0f} MiB" if kiln else "-")
        floor = floors.get(name)
        row.append(
            f"{floor.wall:.2f} s (kiln {kiln.wall / floor.wall:.2f}x)" if floor and kiln else "-"
        )
        rows.append(row)
    return _align(rows)


def _align(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _frozen_source(work: Path) -> Path:
    copy = _fresh_dir(work / "kiln-src")
    subprocess.run(["cp", "-a", str(REPO / "src" / "kiln"), str(copy)], check=True)
    return copy


def _fresh_dir(path: Path) -> Path:
    subprocess.run(["rm", "-rf", str(path)], check=True)
    path.mkdir(parents=True)
    return path


if __name__ == "__main__":
    os.umask(0o022)
    started = time.monotonic()
    code = main()
    print(f"\nbenchmark took {time.monotonic() - started:.0f} s")
    sys.exit(code)
