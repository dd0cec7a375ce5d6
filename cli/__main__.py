"""``python -m cli``: the ``quartier`` command."""

import sys

from cli.main import main

sys.exit(main())
