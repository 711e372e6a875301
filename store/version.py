"""Schema and package versions written into every league."""

from importlib.metadata import PackageNotFoundError, version

SCHEMA_VERSION = 1


def arena_version() -> str:
    """Installed marl-arena version, or "0+unknown" when running from a bare checkout."""
    try:
        return version("marl-arena")
    except PackageNotFoundError:
        return "0+unknown"
