"""``python -m jaxpool``: the ``jaxpool`` command (see :mod:`jaxpool.cli`)."""

import sys

from jaxpool.cli import main

sys.exit(main())
