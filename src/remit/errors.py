"""Exceptions that reach the user as one clear line (the CLI prints them without a traceback)."""


class RemitError(Exception):
    """Base of every error remit raises on purpose: bad input, bad config, incompatible models."""


class ConfigError(RemitError, ValueError):
    """A config key or value is wrong; the message names the key and what is accepted."""


class DataError(RemitError, ValueError):
    """Input data is missing or malformed; the message names the file (and line)."""


class IncompatibleModelsError(RemitError):
    """Policy and reference cannot be paired (tokenizer or vocabulary differ)."""


class TrainingError(RemitError):
    """Training had to stop (NaN/inf loss, ...); the message names the step."""


class OutDirBusyError(RemitError):
    """Another live run holds the output folder's lock; the message names the folder and the holder."""
