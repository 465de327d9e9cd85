"""kiln.commands: the commands that are not a build (login, warm, push of a saved image).

Why a package beside ``cli``: the CLI and the programmatic API both call these, and they wire the
registry, blob store and outputs the way the builder does without being part of the build loop.
"""
