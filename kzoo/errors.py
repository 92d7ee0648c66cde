"""User-facing errors.

Every exception a user can cause by a mistake (a wrong name, a bad option, a missing file) derives from
:class:`KzooError`. The CLI prints its message and exits with status 2, without a traceback (or with the
``exit_code`` of the class: a training stopped by Ctrl-C or by a diverging loss). This module imports nothing,
so any module may use it.
"""


def first_line(exc, default=""):
    """The first line of an exception's message (or of any text), or ``default`` when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else default


class KzooError(Exception):
    """A mistake the user can fix; the message says what was received and what is expected."""

    exit_code = 2


class UnknownNameError(KzooError, KeyError):
    """A model or dataset name that is not registered."""

    def __str__(self):  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class OptionError(KzooError, ValueError):
    """An option that the model does not take, or a value it does not allow."""


class BackendError(KzooError):
    """A backend that is unknown, not installed, or can no longer be chosen."""


class PluginError(KzooError):
    """A plugin distribution that failed to import or to build its model."""


class DataError(KzooError, ValueError):
    """A dataset that is missing, malformed or does not fit the model."""


class CheckpointError(KzooError):
    """A checkpoint or run folder that is missing, truncated or unsafe to load."""


class ResourceError(KzooError):
    """A request that cannot fit this machine: a model or batch too large for its memory, a full disk."""


class TrainingInterrupted(KzooError):
    """Ctrl-C: a resumable checkpoint was saved."""

    exit_code = 130


class TrainingDiverged(KzooError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3
