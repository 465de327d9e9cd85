"""kiln.build: the builder (stage graph, pure dispatch, executor, outputs).

The package is also callable, so that the documented programmatic API reads
``kiln.build(context=..., destinations=[...])`` even though ``kiln.build`` is this package; the
call forwards to :func:`kiln.build.api.build_image`.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableBuildModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from kiln.build.api import build_image

        return build_image(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableBuildModule
