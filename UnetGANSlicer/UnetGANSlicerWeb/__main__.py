"""``python -m UnetGANSlicerWeb [options] [INPUT]``: the same as ``unetgan web``."""
import sys

from .cli import main

sys.exit(main())
