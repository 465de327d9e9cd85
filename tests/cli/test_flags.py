"""Flag parsing: exact names only, every boolean in Kaniko's `--flag=true|false` form too.

Why: argparse's prefix matching turned Kaniko's `--cache=true` into `--cache-dir=true` (a
directory named `true`); CI files spell booleans `--flag`, `--flag=true` and `--flag=false`.
The boolean list is read from the parser itself, so a new flag is covered without editing here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kiln.cli.build_command import options_from_args
from kiln.cli.flags import BooleanFlag
from kiln.cli.main import make_parser
from tests.support.tools import run_kiln

#: Arguments each command needs besides the flag under test.
REQUIRED = {
    "build": [],
    "executor": [],
    "parse": ["Dockerfile"],
    "login": ["reg.example", "-u", "me"],
    "warm": ["-i", "img", "--cache-dir", "/c"],
    "push": ["src", "-d", "reg.example/a:1"],
}


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _booleans() -> list[tuple[str, str, str]]:
    """(command, flag, dest) for every boolean flag of every command."""
    out = []
    for command, parser in _commands().items():
        for action in parser._actions:
            if isinstance(action, BooleanFlag):
                out.extend((command, flag, action.dest) for flag in action.option_strings)
    return out


def test_there_are_booleans_to_check() -> None:
    flags = {flag for _, flag, _ in _booleans()}
    assert {"--no-push", "--reproducible", "--insecure", "--ignore-var-run", "--compact"} <= flags


def test_no_flag_is_a_plain_store_true() -> None:
    """Every flag without a value is a BooleanFlag (only -h/--version take none at all)."""
    for command, parser in [("kiln", make_parser()), *_commands().items()]:
        for action in parser._actions:
            if action.nargs == 0:
                assert isinstance(action, (argparse._HelpAction, argparse._VersionAction)), (
                    command,
                    action.option_strings,
                )


@pytest.mark.parametrize(("command", "flag", "dest"), _booleans())
def test_boolean_in_every_spelling(command: str, flag: str, dest: str) -> None:
    parser = make_parser()
    base = [command, *REQUIRED[command]]
    spellings = {
        (flag,): True,
        (f"{flag}=true",): True,
        (f"{flag}=True",): True,
        (f"{flag}=1",): True,
        (f"{flag}=false",): False,
        (f"{flag}=FALSE",): False,
        (f"{flag}=0",): False,
        (f"{flag}=false", flag): True,  # the last one wins
        (flag, f"{flag}=false"): False,
    }
    # login's --password-stdin is required: given when another flag is under test
    extra = ["--password-stdin"] if command == "login" and flag != "--password-stdin" else []
    for words, expected in spellings.items():
        args = parser.parse_args([*base, *extra, *words])
        assert getattr(args, dest) is expected, words


@pytest.mark.parametrize(("command", "flag", "dest"), _booleans())
def test_boolean_rejects_other_values(
    command: str, flag: str, dest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        make_parser().parse_args([command, *REQUIRED[command], f"{flag}=maybe"])
    assert exit_info.value.code == 2
    assert "expected true or false, not 'maybe'" in capsys.readouterr().err


def test_bare_boolean_does_not_swallow_the_context() -> None:
    args = make_parser().parse_args(["build", "--no-push", "ctx", "--reproducible"])
    assert args.no_push is True and args.reproducible is True and args.context_pos == "ctx"
    args = make_parser().parse_args(["build", "--no-push=false", "ctx"])
    assert args.no_push is False and args.context_pos == "ctx"


def test_words_after_double_dash_are_not_rewritten() -> None:
    args = make_parser().parse_args(["build", "--", "--no-push"])
    assert args.context_pos == "--no-push" and args.no_push is False


@pytest.mark.parametrize(
    "words",
    [
        ["--push"],  # was "ambiguous" (--push-retry, --push-ignore-...)
        ["--dest", "r/a:1"],  # was --destination
        ["--no-pu"],  # was --no-push
        ["--reproduc"],
        ["--cache-d", "/x"],
    ],
)
def test_abbreviations_are_unknown_flags(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        make_parser().parse_args(["build", *words, "ctx"])
    assert exit_info.value.code == 2
    assert f"unrecognized arguments: {words[0]}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("words", "field", "value"),
    [
        (["--cache=true"], "cache", True),
        (["--cache"], "cache", True),
        (["--cache-repo=r.io/c"], "cache", True),
        (["--cache-ttl=6h"], "cache_ttl", 6 * 3600.0),
        (["--no-push-cache"], "push_cache", False),
        (["--cache-run-layers=false"], "cache_run_layers", False),
        (["--cache-copy-layers=false"], "cache_copy_layers", False),
        (["--no-cache"], "no_cache", True),
        (["--no-cache-filter", "a,b", "--no-cache-filter=c"], "no_cache_stages", ("a", "b", "c")),
    ],
)
def test_cache_flags_fill_build_options(words: list[str], field: str, value: object) -> None:
    options = options_from_args(make_parser().parse_args(["build", *words, "ctx"]))
    assert getattr(options, field) == value
    assert options.cache_dir is None  # `--cache=true` is not an abbreviation of --cache-dir


def test_malformed_cache_ttl_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = run_kiln("build", "--no-push", "--cache-ttl=2weeks", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert "cache TTL '2weeks' is not a duration" in result.stderr


def test_help_documents_exit_statuses() -> None:
    result = run_kiln("build", "--help")
    assert result.returncode == 0
    assert "exit status:" in result.stdout
    assert "a RUN step exited with status N" in result.stdout
    assert "exit status:" in run_kiln("--help").stdout
    assert "[--no-push[=true|false]]" in result.stdout  # the value is never a separate word
    assert "\n  --reproducible[=true|false]\n" in result.stdout


def test_boolean_values_reach_the_build(tmp_path: Path) -> None:
    """`--no-push=false` really means push (so a destination is needed); `=true` builds."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    refused = run_kiln("build", "--no-push=false", str(tmp_path))
    assert refused.returncode == 2
    assert "no destination given" in refused.stderr
    assert "hint: give --destination REGISTRY/REPO:TAG, or --no-push with --tar-path FILE" in (
        refused.stderr
    )
    digests = []
    for spelling in ("--reproducible=true", "--reproducible"):
        built = run_kiln("build", "--no-push=true", spelling, str(tmp_path))
        assert built.returncode == 0, built.stderr
        digests.append(built.stdout)
    assert digests[0] == digests[1]
    later = run_kiln("build", "--no-push", "--reproducible=false", str(tmp_path))
    assert later.returncode == 0 and later.stdout != digests[0]  # created: the build's time


@pytest.mark.parametrize(
    ("words", "uses_registry_cache"),
    [
        (("--cache-repo", "reg.example/app/cache"), True),
        (("--cache=true", "--cache-repo", "reg.example/app/cache"), True),
        (("--cache=false", "--cache-repo", "reg.example/app/cache"), False),
    ],
)
def test_an_explicit_cache_false_turns_the_registry_cache_off(
    words: tuple[str, ...], uses_registry_cache: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Kaniko's rule: `--cache=false` wins over `--cache-repo`, which is then said to be unused."""

    args = make_parser().parse_args(["build", "-d", "reg.example/app:1", *words, "."])
    options = options_from_args(args)
    assert (options.cache_repo is not None) is uses_registry_cache
    assert options.cache is uses_registry_cache
    unused = "--cache-repo reg.example/app/cache is not used" in caplog.text
    assert unused is not uses_registry_cache
