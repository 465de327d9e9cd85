"""How long ``kiln.dockerfile.parse`` takes on large Dockerfiles of different shapes.

Why: the parser must stay linear in the size of its input (issue 11.10: a 40,000-line file took
6 s and 10 MB of line continuations took minutes). Timings are machine-dependent, so they are
measured here and reported, never asserted in a test. Run from the repository root:

    PYTHONPATH=src python3 bench/parse_dockerfile.py            # every shape, 10 MB each
    PYTHONPATH=src python3 bench/parse_dockerfile.py --mb 1 --shapes continuations,one-line

Each shape is generated in memory at about ``--mb`` megabytes and parsed once (best of
``--runs``); the table shows size, lines and seconds, and the seconds per MB of a quarter-size
input, so a super-linear shape stands out as a ratio well above 1.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable

from kiln.dockerfile import parse
from kiln.errors import DockerfileError


def _repeat(unit: str, size: int, head: str = "FROM scratch\n") -> str:
    return head + unit * max(1, (size - len(head)) // len(unit))


def _continuations(n: int) -> str:
    return _repeat("  echo a line of a long RUN \\\n", n, "FROM scratch\nRUN \\\n") + "  true\n"


def _numbered_count(unit_length: Callable[[int], int], size: int) -> int:
    """How many numbered units (whose length grows with the number's digits) fill ``size``."""
    count = total = 0
    while total < size:
        total += unit_length(count)
        count += 1
    return max(1, count)


def _heredoc_markers(n: int) -> str:
    head = "FROM scratch\nRUN cat\n"
    # Marker `` <<E{i}`` on the RUN line plus its body ``b\nE{i}\n``: 8 + 2 * digits bytes.
    count = _numbered_count(lambda i: 8 + 2 * len(str(i)), n - len(head))
    markers = "".join(f" <<E{i}" for i in range(count))
    return "FROM scratch\nRUN cat" + markers + "\n" + "".join(f"b\nE{i}\n" for i in range(count))


def _stages(n: int) -> str:
    count = _numbered_count(lambda i: 24 + len(str(i)), n)
    return "".join(f"FROM scratch AS s{i}\nRUN x\n" for i in range(count))


def _run_words_with_heredoc(n: int) -> str:
    head, unit, tail = "FROM scratch\nRUN <<EOF", " \"$a\" 'b'", "\nbody\nEOF\n"
    return head + unit * max(1, (n - len(head) - len(tail)) // len(unit)) + tail


def _comments_in_continuation(n: int) -> str:
    unit = "# a comment inside the RUN\n\n  && echo x \\\n"
    return _repeat(unit, n, "FROM scratch\nRUN true \\\n") + "  true\n"


SHAPES: dict[str, Callable[[int], str]] = {
    # Many short instructions in one stage (the 40,000-line case, scaled).
    "instructions": lambda n: _repeat("RUN echo hello world\n", n),
    # Many ENV/LABEL pairs: word splitting per instruction.
    "env-pairs": lambda n: _repeat('ENV a=1 b="two words" c=three\\ four\n', n),
    # One ENV with every pair on one line.
    "env-one-line": lambda n: "FROM scratch\nENV" + ' k="v w"' * (n // 8) + "\n",
    # One ARG declaring many names.
    "arg-one-line": lambda n: "FROM scratch\nARG" + " a=1" * (n // 4) + "\n",
    # One exec-form CMD with a huge JSON array.
    "json-array": lambda n: 'FROM scratch\nCMD ["x"' + ', "y"' * (n // 5) + "]\n",
    # One instruction continued over every line.
    "continuations": _continuations,
    # One physical line holding a single huge instruction.
    "one-line": lambda n: "FROM scratch\nRUN " + "x" * n + "\n",
    # One huge quoted word (the lexer's quote scanning).
    "one-quoted-word": lambda n: 'FROM scratch\nENV a="' + "y" * n + '"\n',
    # A RUN line with many `$var` and quotes (heredoc detection lexes the whole line).
    "run-words-with-heredoc": _run_words_with_heredoc,
    # One heredoc with a huge body.
    "heredoc": lambda n: _repeat("echo body line\n", n, "FROM scratch\nRUN <<EOF\n") + "EOF\n",
    # Many heredoc markers on one RUN.
    "heredoc-markers": _heredoc_markers,
    # Comments and blank lines between continuation lines.
    "comments-in-continuation": _comments_in_continuation,
    # Many stages.
    "stages": _stages,
    # Many comment lines (each one becomes a pending comment list).
    "comments": lambda n: _repeat("# just a comment line here\n", n) + "RUN x\n",
    # Many flags on one COPY.
    "flags": lambda n: "FROM scratch\nCOPY" + " --exclude=x" * (n // 12) + " a b\n",
}


def _time(text: str, runs: int) -> float:
    """CPU seconds of this process (best of ``runs``): steadier than wall time on a shared
    machine, and parsing neither sleeps nor waits."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        with contextlib.suppress(DockerfileError):  # a refusal's time counts the same
            parse(text)
        best = min(best, time.process_time() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="input size per shape (MB)")
    parser.add_argument("--runs", type=int, default=1, help="best of N runs")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shapes")
    args = parser.parse_args(argv)
    size = int(args.mb * 1_000_000)
    print(f"{'shape':<26} {'MB':>6} {'lines':>9} {'cpu s':>8} {'s/MB':>7} {'ratio':>6}")
    worst = 0.0
    for name in args.shapes.split(","):
        make = SHAPES[name]
        text = make(size)
        small = make(size // 4)
        seconds = _time(text, args.runs)
        small_seconds = _time(small, args.runs)
        per_mb = seconds / (len(text) / 1e6)
        small_per_mb = small_seconds / (len(small) / 1e6)
        ratio = per_mb / small_per_mb if small_per_mb else 0.0
        worst = max(worst, seconds)
        print(
            f"{name:<26} {len(text) / 1e6:>6.1f} {text.count(chr(10)):>9} "
            f"{seconds:>8.2f} {per_mb:>7.3f} {ratio:>6.2f}",
            flush=True,
        )
    print(f"slowest: {worst:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
