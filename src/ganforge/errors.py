"""User-facing errors: the command line prints their message on one line and exits with status 2."""


class GanforgeError(Exception):
    """Bad input or an unusable file: the message names the problem; no traceback by default."""


class ConfigError(GanforgeError):
    """A config value, key or override is invalid."""


class DataError(GanforgeError):
    """A dataset cannot be found, read or downloaded."""


class CheckpointError(GanforgeError):
    """A checkpoint is missing, truncated, not ganforge's, or unsafe to load."""
