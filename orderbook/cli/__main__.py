"""``python -m orderbook.cli``: the same command line as ``python -m orderbook``."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
