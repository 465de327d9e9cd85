"""`kiln parse`: the real command prints the parsed Dockerfile as JSON (and fails cleanly)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.tools import run_kiln


def test_parse_prints_stages_with_line_ranges(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# syntax=docker/dockerfile:1\nARG V=1\nFROM busybox AS build\nMAINTAINER me\n"
        "RUN <<EOF\necho $V\nEOF\nFROM build\nCOPY --from=build /a /b\n"
    )
    result = run_kiln("parse", str(dockerfile))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["directives"] == {"syntax": "docker/dockerfile:1"}
    assert [a["fields"]["args"] for a in doc["meta_args"]] == [[["V", "1"]]]
    first, second = doc["stages"]
    run = first["instructions"][1]
    assert (run["keyword"], run["line"], run["end_line"]) == ("RUN", 5, 7)
    assert second["instructions"][0]["fields"]["from"] == "build"
    assert [w["rule"] for w in doc["warnings"]] == ["MaintainerDeprecated"]


def test_parse_reports_syntax_errors_with_location(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM busybox\nONBUILD ONBUILD RUN true\n")
    result = run_kiln("parse", str(dockerfile))
    assert result.returncode != 0
    assert f"{dockerfile}:2" in result.stderr and "Chaining ONBUILD" in result.stderr
