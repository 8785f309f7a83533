"""`python -m gateway start …`."""

import sys

from .cli import main

sys.exit(main())
