"""Errors of the policies layer whose message is one line meant for the user."""


class PolicyError(ValueError):
    """A policy cannot be built, loaded or played as asked (roles, scenarios, shapes)."""
