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


EXIT_INPUT_ERROR = 2
EXIT_CANCELLED = 130


def user_error(err: BaseException) -> tuple[int, str] | None:
    """(exit code, text of the ``ERROR:`` line) for a failure the user can act on, else None (a bug:
    keep its traceback). One wording for the command line and the warm worker."""
    if isinstance(err, InputError):
        return EXIT_INPUT_ERROR, str(err)
    if isinstance(err, Cancelled):
        return EXIT_CANCELLED, str(err)
    if isinstance(err, KeyboardInterrupt):
        return EXIT_CANCELLED, "interrupted"
    if isinstance(err, OSError):  # the system refused a read or write (disk, permissions)
        where = f" ({err.filename})" if err.filename else ""
        return EXIT_INPUT_ERROR, f"{err.strerror or err}{where}; expected readable inputs and a writable output folder"
    return None
