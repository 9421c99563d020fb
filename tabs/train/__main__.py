"""`python -m tabs.train [studio.py's flags]`: the Train tab alone, served as the studio serves it."""

import sys

from studio import main

sys.exit(main(only="train"))
