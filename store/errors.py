"""Errors raised by the league store; every message is one line meant for the user."""


class StoreError(Exception):
    """A league operation that cannot be done as asked (bad name, unknown ref, bad input)."""


class LockTimeout(StoreError):
    """Another process held the league for longer than the lock timeout."""


class CorruptLeague(StoreError):
    """The league file (or its journal) is missing, unreadable, or not a league of this schema."""
