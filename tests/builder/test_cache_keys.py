"""Cache keys change exactly when a step's inputs do, and a miss names the input that changed."""

from __future__ import annotations

from kiln.builder.cache.explain import miss_reason
from kiln.builder.cache.keys import make_key, step_inputs
from kiln.builder.effects import RunEffect
from kiln.builder.state import StageState
from kiln.image import ImageConfig

OPTIONS = {"compression": "gzip", "level": None, "source_date_epoch": 0, "format": "oci"}


def run_key(env: tuple[str, ...], args: dict[str, str], parent: str = "p") -> str:
    state = StageState(config=ImageConfig.empty(), args=args)
    effect = RunEffect(argv=("/bin/sh", "-c", "true"), env=env)
    return make_key(step_inputs(parent, state, effect, OPTIONS)).digest


def test_proxy_args_are_not_part_of_the_key() -> None:
    plain = run_key(("PATH=/bin",), {})
    proxied = run_key(("PATH=/bin", "HTTP_PROXY=http://p:3128"), {"HTTP_PROXY": "http://p:3128"})
    assert plain == proxied


def test_build_arg_value_and_parent_are() -> None:
    one = run_key(("PATH=/bin", "V=1"), {"V": "1"})
    assert one != run_key(("PATH=/bin", "V=2"), {"V": "2"})
    assert one != run_key(("PATH=/bin", "V=1"), {"V": "1"}, parent="q")
    assert one == run_key(("PATH=/bin", "V=1"), {"V": "1"})


def test_reasons_name_the_changed_input() -> None:
    state = StageState(config=ImageConfig.empty(), args={"V": "1"})
    effect = RunEffect(argv=("/bin/sh", "-c", "true"), env=("V=1",))
    before = step_inputs("p", state, effect, OPTIONS)
    changed = step_inputs("p", StageState(config=ImageConfig.empty(), args={"V": "2"}),
                          RunEffect(argv=effect.argv, env=("V=2",)), OPTIONS)  # fmt: skip
    assert miss_reason(before, changed, first_step=False, where="") == "build arg V changed"
    moved = dict(before, parent="q")
    assert miss_reason(before, moved, first_step=True, where="") == "base image changed"
    assert miss_reason(before, moved, first_step=False, where="") == "earlier step missed"
    assert miss_reason(None, before, first_step=False, where="") == "no cache entry"
    files = dict(before, **{"file:a.py": "x"})
    assert (
        miss_reason(
            files, dict(before, **{"file:a.py": "y"}), first_step=False, where="COPY . at D:2"
        )
        == "a.py changed (COPY . at D:2)"
    )
