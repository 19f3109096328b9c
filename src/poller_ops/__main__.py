"""`python -m poller_ops`: the operator's command line (the same as `poller`)."""

import sys

from poller_ops.cli import main

sys.exit(main())
