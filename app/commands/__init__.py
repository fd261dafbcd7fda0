"""One module per ``fluorosim`` subcommand (``HELP``, ``add_arguments``, ``run``)."""
