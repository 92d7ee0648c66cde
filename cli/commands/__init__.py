"""One module per ``kzoo`` command, each defining a module-level ``*_command``."""
