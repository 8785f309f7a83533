"""`python -m faas_executor start …` (the same as `faas executor start …`)."""

import sys

from .cli import main

sys.exit(main())
