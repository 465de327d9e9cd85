"""Git build contexts, fetched by the real git client from a real git daemon and smart HTTP."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kiln.context import open_context
from kiln.context.giturl import GitOptions, GitSource, is_git_spec, parse_git_spec, redact_url
from kiln.errors import ContextError, UsageError
from tests.context.conftest import GIT_CREDENTIALS, GitFixture

C1 = "0123456789abcdef0123456789abcdef01234567"

# ---- parsing (pure) ------------------------------------------------------------------------

SPECS: list[tuple[str, GitSource]] = [
    ("git://h/r.git", GitSource("git://h/r.git")),
    ("git://h/r.git#refs/heads/b", GitSource("git://h/r.git", ref="refs/heads/b")),
    (f"git://h/r.git#refs/heads/b#{C1}", GitSource("git://h/r.git", "refs/heads/b", C1)),
    (f"git://h/r.git##{C1}", GitSource("git://h/r.git", commit=C1)),
    ("https://h/r.git#v1:docs/app", GitSource("https://h/r.git", "v1", None, "docs/app")),
    ("https://h/r.git#:app/", GitSource("https://h/r.git", subdir="app")),
    (f"https://h/r.git#{C1.upper()}", GitSource("https://h/r.git", commit=C1)),
    ("git@github.com:o/r.git#main", GitSource("git@github.com:o/r.git", ref="main")),
]


@pytest.mark.parametrize(("spec", "expected"), SPECS)
def test_parse_git_spec(spec: str, expected: GitSource) -> None:
    assert is_git_spec(spec)
    assert parse_git_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "is_git"),
    [
        ("https://h/ctx.tar.gz", False),
        ("https://h/r.git/", True),
        ("http://h/r.git#x", True),
        ("ssh://git@h/r", True),
        ("dir/path.git", False),
    ],
)
def test_which_urls_are_git(spec: str, is_git: bool) -> None:
    assert is_git_spec(spec) is is_git


def test_a_malformed_commit_is_refused() -> None:
    with pytest.raises(UsageError, match="not a commit id"):
        parse_git_spec("git://h/r.git#main#abc")


def test_redact_url_drops_user_and_password() -> None:
    assert redact_url("https://u:p4ss@h:8443/r.git") == "https://h:8443/r.git"
    assert redact_url("git://h/r.git") == "git://h/r.git"


def test_git_options() -> None:
    options = GitOptions.parse(["branch=dev,single-branch=false", "recurse-submodules=true"])
    assert options == GitOptions("dev", False, True, 1, False)
    assert GitOptions.parse(["depth=0", "insecure-skip-tls=yes"]).depth == 0
    with pytest.raises(UsageError, match="unknown option 'colour'"):
        GitOptions.parse(["colour=red"])
    with pytest.raises(UsageError, match="expected true or false"):
        GitOptions.parse(["single-branch=maybe"])
    with pytest.raises(UsageError, match="expected a number"):
        GitOptions.parse(["depth=-1"])


# ---- fetching over git:// ------------------------------------------------------------------


def _git_out(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("", "two"),
        ("#refs/heads/feature", "feature"),
        ("#feature", "feature"),
        ("#v1", "one"),
    ],
)
def test_git_daemon_refs(git_sources: GitFixture, fragment: str, expected: str) -> None:
    with open_context(f"{git_sources.daemon_url}/app.git{fragment}") as ctx:
        assert (ctx.root / "a.txt").read_text() == expected
        assert ctx.dockerfile == ctx.root / "Dockerfile"  # type: ignore[attr-defined]


def test_git_pinned_commit(git_sources: GitFixture) -> None:
    spec = f"{git_sources.daemon_url}/app.git#refs/heads/main#{git_sources.first}"
    with open_context(spec) as ctx:
        assert (ctx.root / "a.txt").read_text() == "one"
        assert _git_out(ctx.root, "rev-parse", "HEAD") == git_sources.first


def test_git_commit_alone(git_sources: GitFixture) -> None:
    with open_context(f"{git_sources.daemon_url}/app.git#{git_sources.feature}") as ctx:
        assert (ctx.root / "a.txt").read_text() == "feature"


def test_git_subdir_and_context_sub_path(git_sources: GitFixture) -> None:
    with open_context(f"{git_sources.daemon_url}/app.git#v1:sub") as ctx:
        assert (ctx.root / "b.txt").read_text() == "b"
        assert ctx.root.name == "sub"
    spec = f"{git_sources.daemon_url}/app.git"
    with open_context(spec, sub_path="sub", dockerfile=Path("Dockerfile")) as ctx:
        assert ctx.dockerfile == ctx.root / "Dockerfile"  # type: ignore[attr-defined]
        assert (ctx.dockerfile.read_text()).endswith("COPY b.txt /\n")  # type: ignore[attr-defined]
    with pytest.raises(ContextError, match="sub-path 'nope' is not a directory"):
        open_context(spec, sub_path="nope")


def test_git_depth_and_branches(git_sources: GitFixture) -> None:
    spec = f"{git_sources.daemon_url}/app.git"
    with open_context(spec) as ctx:
        assert _git_out(ctx.root, "rev-list", "--count", "HEAD") == "1"  # shallow by default
    options = GitOptions.parse(["depth=0,single-branch=false"])
    with open_context(spec, git=options) as ctx:
        assert int(_git_out(ctx.root, "rev-list", "--count", "HEAD")) == 3
        assert (ctx.root / "a.txt").read_text() == "two"  # still the default branch
        assert "origin/feature" in _git_out(ctx.root, "branch", "--remotes")
    with open_context(spec, git=GitOptions(branch="feature")) as ctx:
        assert (ctx.root / "a.txt").read_text() == "feature"


def test_git_submodules(git_sources: GitFixture) -> None:
    spec = f"{git_sources.daemon_url}/app.git"
    with open_context(spec) as ctx:
        assert not (ctx.root / "vendor/lib/lib.txt").exists()
    with open_context(spec, git=GitOptions(recurse_submodules=True)) as ctx:
        assert (ctx.root / "vendor/lib/lib.txt").read_text() == "from the submodule\n"


def test_git_missing_ref_is_a_clear_error(git_sources: GitFixture) -> None:
    with pytest.raises(ContextError, match="git fetch failed") as info:
        open_context(f"{git_sources.daemon_url}/app.git#refs/heads/nope")
    assert "check the ref" in str(info.value)


def test_git_clone_leaves_nothing_behind(git_sources: GitFixture) -> None:
    ctx = open_context(f"{git_sources.daemon_url}/app.git")
    tempdir = ctx.root.parent
    ctx.close()
    assert not tempdir.exists()


# ---- smart HTTP with credentials -----------------------------------------------------------


def test_git_http_needs_and_hides_credentials(
    git_sources: GitFixture, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spec = f"{git_sources.http.url}/git/app.git#feature"
    for name in ("GIT_USERNAME", "GIT_PASSWORD", "GIT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ContextError, match="GIT_USERNAME") as info:
        open_context(spec)
    user, password = GIT_CREDENTIALS
    monkeypatch.setenv("GIT_USERNAME", user)
    monkeypatch.setenv("GIT_PASSWORD", "wrong-" + password)
    with pytest.raises(ContextError) as info:
        open_context(spec)
    assert password not in str(info.value)
    monkeypatch.setenv("GIT_PASSWORD", password)
    caplog.set_level("DEBUG", logger="kiln")
    with open_context(spec) as ctx:
        assert (ctx.root / "a.txt").read_text() == "feature"
        assert password not in (ctx.root / ".git/config").read_text()
    assert password not in caplog.text
    assert any(path.endswith("git-upload-pack") for path in git_sources.http.requests)


def test_git_token_is_sent_as_the_user_name(
    git_sources: GitFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kaniko sends GIT_TOKEN as the user name with an empty password; so does kiln.
    monkeypatch.setattr(git_sources.http, "credentials", ("tok-123456", ""))
    monkeypatch.setenv("GIT_TOKEN", "tok-123456")
    monkeypatch.setenv("GIT_USERNAME", "ignored-when-a-token-is-set")
    with open_context(f"{git_sources.http.url}/git/app.git#v1:sub") as ctx:
        assert (ctx.root / "b.txt").read_text() == "b"


def test_git_pull_method_rewrites_git_urls(
    git_sources: GitFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kaniko fetches git://HOST/PATH over https (or http with GIT_PULL_METHOD=http).
    monkeypatch.setattr(git_sources.http, "credentials", None)
    monkeypatch.setenv("GIT_PULL_METHOD", "http")
    host = git_sources.http.url.removeprefix("http://")
    with open_context(f"git://{host}/git/app.git#v1") as ctx:
        assert (ctx.root / "a.txt").read_text() == "one"
