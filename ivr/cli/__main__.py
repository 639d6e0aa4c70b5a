"""`python -m ivr.cli`: the `ivr` command, run by this Python (the tests and the benchmark use it)."""

import sys

from ivr.cli import main

sys.exit(main())
