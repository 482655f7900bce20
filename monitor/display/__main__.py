"""``python -m monitor.display [options]``: the same as ``gym-monitor display``."""

import sys

from .service import main

if __name__ == "__main__":
    sys.exit(main())
