"""``python -m mixframe`` runs the command line."""

from mixframe.cli import entry

entry()
