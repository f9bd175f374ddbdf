class UserError(Exception):
    """A problem with the user's input or configuration, reported as one line without a traceback."""
