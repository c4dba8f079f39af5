"""Errors the training package reports to a user, as opposed to bugs in the code."""

from __future__ import annotations

from pathlib import Path


class TrainingError(Exception):
    """Base class for every error the training package reports to a user."""


class DataError(TrainingError):
    """Labelled data could not be read: names the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        """Record where reading failed and why, formatted like a compiler diagnostic."""
        self.path = str(path)
        self.line = line
        self.reason = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type[DataError], tuple[str, str, int | None]]:
        """Pickle the constructor arguments rather than the formatted message."""
        # Exception pickling replays self.args, which here is the formatted text; without this
        # the error could not cross a multiprocessing boundary intact.
        return (type(self), (self.path, self.reason, self.line))


class BundleError(TrainingError):
    """A model bundle is missing, incomplete, inconsistent or of an unsupported format version."""


class ConfigError(TrainingError):
    """A training, model or preprocessing setting is invalid."""


class TokenizerError(TrainingError):
    """A tokenizer configuration or vocabulary is invalid or cannot be loaded."""


class ScoringError(TrainingError):
    """Bulk scoring cannot go on: bad options, an output it cannot write, a stale resume."""
