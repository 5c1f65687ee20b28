"""python3 -m hftp: the same command as the hftp console script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
