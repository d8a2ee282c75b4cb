"""Errors that stop a run with a message rather than a traceback.

``RunStopped`` is raised where a run cannot go on (a question that keeps failing, restarts
used up); the CLI prints its message and exits with 1. Ray re-raises an actor's exception in
the caller as a subclass of both ``RayTaskError`` and the original class, so a driver can
catch it by this class.
"""


class RunStopped(RuntimeError):
    pass
