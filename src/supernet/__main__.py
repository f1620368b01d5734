"""`python -m supernet ...`: the same command as `supernet ...`."""

import sys

from supernet.cli import main

sys.exit(main())
