"""The one exception type a user sees: a single sentence naming the problem and the fix."""


class RedcubeError(Exception):
    """Bad input or a missing dependency. The message is shown to the user as is."""
