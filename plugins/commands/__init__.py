"""Built-in commands of the mixframe command line: one module per command, each a thin layer over the Python API."""
