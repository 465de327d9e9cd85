"""Expansion tables for expand_word / expand_words, after BuildKit's shell/envVarTest and wordsTest.

Each row is ``word | expected``; ``error`` means ExpansionError. Whitespace around ``|`` is
trimmed, so expected values with significant edge spaces are written in the Python tables below.
"""

from __future__ import annotations

import pytest

from kiln.dockerfile import ExpansionError, expand_word, expand_words

ENV = {"PWD": "/home", "SHELL": "bash", "NULL": "", "v": "a.b.c", "star": "a*b", "sp": "x y"}

WORD_TABLE = r"""
hello                      | hello
he'll'o                    | hello
he'llo                     | error
he\'llo                    | he'llo
he\\'llo                   | error
abc\tdef                   | abctdef
"abc\tdef"                 | abc\tdef
"abc\\tdef"                | abc\tdef
'abc\tdef'                 | abc\tdef
hello\                     | hello
hello\\                    | hello\
"hello                     | error
"hello\"                   | error
"hel'lo"                   | hel'lo
'hello                     | error
'hello\'                   | hello\
'hello\there'              | hello\there
'hello\\there'             | hello\\there
"''"                       | ''
$.                         | $.
$                          | $
he$1x                      | hex
he$.x                      | he$.x
he$pwd.                    | he.
he$PWD                     | he/home
he\$PWD                    | he$PWD
he\\$PWD                   | he\/home
"he\$PWD"                  | he$PWD
"he\\$PWD"                 | he\/home
\${}                       | ${}
he\${}xx                   | he${}xx
${}                        | error
he${}xx                    | error
he${hi}xx                  | hexx
he${PWD}                   | he/home
he${.}                     | error
he${XXX:-000}xx            | he000xx
he${PWD:-000}xx            | he/homexx
he${XXX:-$PWD}xx           | he/homexx
he${XXX:-${PWD:-yyy}}xx    | he/homexx
he${XXX:-${YYY:-yyy}}xx    | heyyyxx
he${NULL:-def}xx           | hedefxx
he${NULL-def}xx            | hexx
he${XXX-def}xx             | hedefxx
he${XXX:YYY}               | error
he${XXX?}                  | error
he${XXX:?}                 | error
he${PWD?}                  | he/home
he${PWD:?}                 | he/home
he${NULL?}                 | he
he${NULL:?}                | error
he${XXX:+${PWD}}xx         | hexx
he${PWD:+${XXX}}xx         | hexx
he${PWD:+${SHELL}}xx       | hebashxx
he${XXX:+000}xx            | hexx
he${PWD:+000}xx            | he000xx
he${NULL:+000}xx           | hexx
he${NULL+000}xx            | he000xx
'he${XX}'                  | he${XX}
"he${PWD}"                 | he/home
"he'$PWD'"                 | he'/home'
"$PWD"                     | /home
'$PWD'                     | $PWD
'\$PWD'                    | \$PWD
'"hello"'                  | "hello"
he${PWD                    | error
he${PWD:=000}xx            | error
he${PWD:+${PWD}:}xx        | he/home:xx
he${XXX:-\$PWD:}xx         | he$PWD:xx
he${XXX:-\${PWD}z}xx       | he${PWDz}xx
안녕하세요                 | 안녕하세요
안'녕'하세요               | 안녕하세요
안녕\'하세요               | 안녕'하세요
"안녕'하세요"              | 안녕'하세요
${v#*.}                    | b.c
${v##*.}                   | c
${v%.*}                    | a.b
${v%%.*}                   | a
${v#?}                     | .b.c
${v#x}                     | a.b.c
${v/./-}                   | a-b.c
${v//./-}                  | a-b-c
${v/b*/X}                  | a.X
${v//\//X}                 | a.b.c
${star#a\*}                | b
${star%\*b}                | a
${v:#x}                    | error
${v#\x}                    | error
${sp}                      | x y
"${sp}"                    | x y
"a\b"                      | a\b
"a\"b"                     | a"b
"a\\b"                     | a\b
"a\$b"                     | a$b
$SHELL$PWD                 | bash/home
${SHELL}_$PWD              | bash_/home
$SHELL_x                   | (empty)
$@                         | (empty)
"${v}"'${v}'               | a.b.c${v}
"""

WORDS_TABLE = r"""
hello                      | hello
hello${hi}bye              | hellobye
hello${sp}bye              | hellox,ybye
hello"${sp}"bye            | hellox ybye
hello "${sp}"bye           | hello,x ybye
hello there                | hello,there
hello\ there               | hello there
hello" there               | error
hello\" there              | hello",there
hello"\\there"             | hello\there
hello"\there"              | hello\there
hello'\\there'             | hello\\there
hello'$there'              | hello$there
a "" b                     | a,b
$NULL                      | (none)
"""


def _rows(table: str) -> list[tuple[str, str]]:
    rows = []
    for raw in table.strip().splitlines():
        word, _, expected = raw.rpartition("|")
        rows.append((word.strip(), expected.strip()))
    return rows


@pytest.mark.parametrize(("word", "expected"), _rows(WORD_TABLE))
def test_expand_word(word: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(ExpansionError):
            expand_word(word, ENV)
        return
    want = "" if expected == "(empty)" else expected
    assert expand_word(word, ENV) == want


@pytest.mark.parametrize(("word", "expected"), _rows(WORDS_TABLE))
def test_expand_words(word: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(ExpansionError):
            expand_words(word, ENV)
        return
    want = [] if expected == "(none)" else expected.split(",")
    assert expand_words(word, ENV) == want


# Cases whose edge whitespace matters, kept out of the trimmed text tables.
WHITESPACE_CASES = [
    ("hello${lead}def", {"lead": "  ab c"}, ["hello", "ab", "cdef"]),
    ('hello"${lead}" def', {"lead": "  ab c"}, ["hello  ab c", "def"]),
    ("hello${trail}d", {"trail": "ab c   "}, ["helloab", "c", "d"]),
    ('hel"lo${trail}"', {"trail": "ab c   "}, ["helloab c   "]),
    ('hello" there  "', {}, ["hello there  "]),
]


@pytest.mark.parametrize(("word", "env", "expected"), WHITESPACE_CASES)
def test_expand_words_whitespace(word: str, env: dict[str, str], expected: list[str]) -> None:
    assert expand_words(word, env) == expected


def test_expand_word_keeps_whitespace_of_values() -> None:
    assert expand_word("[${lead}]", {"lead": "  ab c "}) == "[  ab c ]"


BACKTICK_CASES = [
    ("a`$b", "a$b"),
    ('"x`"y"', 'x"y'),
    ("c:\\path", "c:\\path"),
    ("a``b", "a`b"),
]


@pytest.mark.parametrize(("word", "expected"), BACKTICK_CASES)
def test_backtick_escape(word: str, expected: str) -> None:
    assert expand_word(word, {"b": "B"}, escape="`") == expected


ERROR_MESSAGES = [
    ("${X:?must be set}", "X: must be set"),
    ("${X?}", "X: is not allowed to be unset"),
    ("${NULL:?}", "NULL: is not allowed to be empty"),
    ("${X", "missing '}'"),
    ("${X/a", "missing '/' in ${}"),
    ("${:}", "bad substitution"),
    ("'abc", "matching single-quote"),
    ("${X:=1}", "unsupported modifier (:=)"),
]


@pytest.mark.parametrize(("word", "fragment"), ERROR_MESSAGES)
def test_expansion_error_messages(word: str, fragment: str) -> None:
    with pytest.raises(ExpansionError) as info:
        expand_word(word, {"NULL": ""})
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)
