"""``python -m corsflow``: the same as the ``corsflow`` command."""

import sys

from .cli import main

sys.exit(main())
