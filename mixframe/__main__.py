"""``python -m mixframe`` runs the command line."""

import sys

from mixframe.cli import main

sys.exit(main())
