"""``python -m rx_allm``: the ``rx-allm`` command."""

import sys

from rx_allm.cli import main

sys.exit(main())


__all__: list[str] = []
