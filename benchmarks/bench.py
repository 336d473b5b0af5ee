"""jaxpool against PyTorch, side by side: ``python3 benchmarks/bench.py --help``.

The benchmark is :mod:`jaxpool._bench`, shipped in the package so that ``jaxpool bench`` runs
from an installed wheel too; this script runs it with this checkout's jaxpool.
"""

import os
import sys

if __package__ in (None, ""):  # run as a script: import this checkout's jaxpool
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxpool._bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
