"""Exceptions vibes raises for problems a user can fix.

Every one carries a single-line message that the command line prints as is,
without a traceback.
"""

from __future__ import annotations


class VibesError(Exception):
    """Base class: a problem with the user's input, data or setup."""


class DatabaseOpenError(VibesError):
    """The database file cannot be opened or written."""


class UnknownCollectionError(VibesError):
    """No collection of that name exists."""


class UnknownModelError(VibesError):
    """No embedding model is registered under that id or alias."""


class ModelMismatchError(VibesError):
    """A collection was used with a model other than the one it was built with."""


class DimensionMismatchError(VibesError):
    """A vector's length differs from the collection's dimensions."""


class ItemNotFoundError(VibesError):
    """No item with that id exists in the collection."""


class InputError(VibesError):
    """Input that cannot be read: malformed rows, missing ids, empty content."""


class StorageError(VibesError):
    """The database failed (locked, full, damaged); the message says how."""


class FilterError(VibesError):
    """A search filter that cannot be parsed or evaluated."""


class SettingsError(VibesError):
    """The settings file cannot be read, an entry in it has the wrong shape, or an
    environment variable holds a value vibes cannot use."""


class UnknownLLMError(VibesError):
    """No chat model (LLM) is known under that name, or none was chosen."""


class QueryTimeoutError(VibesError):
    """A query ran past its time limit and was stopped."""
