"""User-facing errors: each carries a one-line message that the CLI prints without a traceback."""


class SupernetError(Exception):
    """Base class of errors caused by user input or user files (exit code 2 in the CLI)."""


class SpaceError(SupernetError):
    """Unknown search space, bad space option, or an architecture that does not fit the space."""


class DatasetError(SupernetError):
    """A dataset that is missing or malformed."""


class ConfigError(SupernetError):
    """A config field or command-line option with a bad value."""


class CheckpointError(SupernetError):
    """A checkpoint that is missing, unreadable, corrupted or from another space/format."""


class SearchError(SupernetError):
    """A search that cannot proceed, e.g. constraints no candidate can satisfy."""
