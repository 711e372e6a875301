"""The `arena` commands, one module per topic; `cli.py` gathers them into one group.

Each module imports only `commands.common` (and the library packages), never another
command module."""
