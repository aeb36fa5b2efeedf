"""Exceptions for bad arguments that are also ``AssertionError``.

MMDetection checks most arguments with ``assert``, so code written against it (its own
unit tests included) catches ``AssertionError``. detlab reports the same conditions with a
message that names the value and what would be valid, and raises one of these classes:
each is both the built-in exception that describes the problem and an ``AssertionError``,
so ``except ValueError`` and ``except AssertionError`` both catch it. Unlike an ``assert``,
the check still runs under ``python -O``.

This module imports nothing from detlab, so every package may use it.
"""

__all__ = ['AssertionValueError', 'AssertionTypeError', 'AssertionKeyError',
           'AssertionIndexError']


class AssertionValueError(ValueError, AssertionError):
    """A bad value, where MMDetection would fail an ``assert``."""


class AssertionTypeError(TypeError, AssertionError):
    """An argument of the wrong type, where MMDetection would fail an ``assert``."""


class AssertionKeyError(KeyError, AssertionError):
    """An unknown name (box type, converter, ...), where MMDetection would fail an
    ``assert``."""


class AssertionIndexError(IndexError, AssertionError):
    """An index that is out of what the object allows, where MMDetection would fail an
    ``assert``."""
