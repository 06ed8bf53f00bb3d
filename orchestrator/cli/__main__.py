"""``python -m orchestrator.cli ...`` is the ``gridcoord`` command."""

import sys

from orchestrator.cli.main import main

sys.exit(main())
