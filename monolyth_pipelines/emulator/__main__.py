"""``python -m monolyth_pipelines.emulator serve --port P ...`` (see ``cli.py``)."""

import sys

from monolyth_pipelines.emulator.cli import main

sys.exit(main())
