"""`python -m poller`: the operator CLI (same as the `poller` console script)."""

import sys

from .cli import main

sys.exit(main())
