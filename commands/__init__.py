"""The `arena` commands, one module per topic; `cli.py` gathers them into one group.

Each module imports only the shared `commands.common` (output) and `commands.options`
(option checks) besides the library packages, never another command module."""
