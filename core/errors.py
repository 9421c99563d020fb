"""Errors a user can act on. Their text is shown as is: one sentence that says what is wrong and how to fix it."""


class UserError(ValueError):
    """A request the studio refuses, or cannot serve, for a reason the user can fix."""


class ModelUnavailable(UserError):
    """A model that cannot be loaded (not downloaded and offline, not found, not safetensors...)."""


class Stopped(UserError):
    """The user pressed Stop: raised from a model's per-step callback, it ends the run at the next step."""

    def __init__(self, message: str = "Stopped: nothing was saved.") -> None:
        super().__init__(message)
