"""The ``custos`` command's groups and commands, one module per noun; ``cli.py`` assembles them,
and ``backends`` and ``client`` let the evidence and order commands act on the local home or on
a server."""
