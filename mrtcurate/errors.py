class UserError(Exception):
    """A problem with the user's input or configuration, reported as one line without a traceback."""


class JobFailed(Exception):
    """The job ran and could not finish correctly for a reason that is not the user's input (a count that
    does not add up, say): one line and exit code 1, with nothing published."""


class InputChanged(JobFailed):
    """An input file resolved (and fingerprinted) before the job was gone or unreadable when the job read it."""
