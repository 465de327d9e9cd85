"""kiln.builder: the builder (stage graph, pure dispatch, executor, outputs).

Named ``builder`` rather than ``build`` because packaging tools, ``.gitignore`` templates and code
browsers treat a ``build/`` directory as build output. The programmatic entry point is
``kiln.build(...)`` (the same function as :func:`kiln.builder.api.build_image`).
"""
