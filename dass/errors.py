"""The one exception type that entry modules turn into a one-line message and exit code 2."""


class DassError(Exception):
    """A user-facing error: bad config, bad data, bad checkpoint. Printed as one line, exit 2."""
