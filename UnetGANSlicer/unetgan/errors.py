"""Errors the backend raises for problems the user can fix (bad input, wrong model).

The command line turns an ``InputError`` into one ``ERROR: ...`` line and a non-zero
exit code; anything else is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """The input (image, manifest, model file, option) is not usable; the message says why."""


class ModelError(InputError):
    """A weight file is missing, damaged, of another architecture or fails its hash check."""


class Cancelled(RuntimeError):
    """The user cancelled a long run."""
