"""``python -m ml``: the command-line face of the library (see ml.cli)."""
import sys

from ml.cli import main

sys.exit(main())
