"""kiln's argument parser: exact flag names only, and Kaniko's `--flag=true|false` booleans.

Why a parser class of our own: argparse by default accepts any unambiguous prefix of a flag, so
Kaniko's `--cache=true` silently became `--cache-dir=true` (and created a directory named
`true`), and `--push` was "ambiguous" rather than unknown. Kaniko's flags (Go's pflag) also let
every boolean be spelled `--flag`, `--flag=true` or `--flag=false`, and CI files use all three.
``FlagParser`` turns prefix matching off and rewrites a bare boolean `--flag` to `--flag=true`
before argparse sees it, so a boolean's value only ever comes from `=` and never swallows the
next word (`--no-push CONTEXT` keeps CONTEXT positional). Unknown flags are refused with exit
status 2; Kaniko flags kiln does not implement get a sentence saying so.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

#: Kaniko executor flags kiln does not implement (yet), and what they are, for a clear refusal.
#: (Empty since --compressed-caching, --cache-from and --cache-to were implemented; kept so
#: the next such flag gets the same clear refusal.)
NOT_IMPLEMENTED: dict[str, str] = {}


def parse_bool(text: str) -> bool:
    """A boolean flag's value, as Go's strconv.ParseBool (Kaniko's flags) reads it."""
    value = text.strip().lower()
    if value in ("true", "t", "1", "yes"):
        return True
    if value in ("false", "f", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


class BooleanFlag(argparse.Action):
    """A flag that is `--flag` (true), `--flag=true` or `--flag=false`."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("default", False)
        kwargs.setdefault("metavar", "=true|false")  # shown glued: --flag[=true|false]
        super().__init__(option_strings, dest, nargs="?", const=True, type=parse_bool, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)


class FlagHelpFormatter(argparse.HelpFormatter):
    """Shows a boolean as `--flag[=true|false]`: its value is never a separate word."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if isinstance(action, BooleanFlag):
            return ", ".join(f"{name}[=true|false]" for name in action.option_strings)
        return super()._format_action_invocation(action)

    def _format_usage(
        self,
        usage: str | None,
        actions: Iterable[argparse.Action],
        groups: Iterable[argparse._MutuallyExclusiveGroup],
        prefix: str | None,
    ) -> str:
        text = super()._format_usage(usage, actions, groups, prefix)
        return text.replace(" [=true|false]", "[=true|false]")


class FlagParser(argparse.ArgumentParser):
    """``ArgumentParser`` without prefix matching, with ``BooleanFlag`` rewriting (see module).

    Subparsers made with ``add_subparsers().add_parser`` are FlagParsers too (argparse makes
    them of the parent's class) and get the same settings.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        kwargs.setdefault("formatter_class", FlagHelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if args is not None:
            args = self._spell_out_booleans(list(args))
        return super().parse_known_args(args, namespace)

    def _spell_out_booleans(self, args: list[str]) -> list[str]:
        """`--flag` becomes `--flag=true` for this parser's booleans (up to a lone `--`)."""
        booleans = {
            name
            for action in self._actions
            if isinstance(action, BooleanFlag)
            for name in action.option_strings
        }
        out: list[str] = []
        for index, word in enumerate(args):
            if word == "--":
                return out + args[index:]
            out.append(f"{word}=true" if word in booleans else word)
        return out

    def error(self, message: str) -> NoReturn:
        """argparse's usage error (exit status 2), naming unimplemented Kaniko flags as such."""
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            words = message[len(prefix) :].split()
            known = [w for w in words if w.partition("=")[0] in NOT_IMPLEMENTED]
            if known:
                flag = known[0].partition("=")[0]
                message = (
                    f"{flag}: {NOT_IMPLEMENTED[flag]} is not implemented by kiln; remove the flag"
                    f" ({prefix}{' '.join(words)})"
                )
        super().error(message)
