"""``python -m mixframe`` runs the command line."""

from mixframe.cli.main import entry

entry()
