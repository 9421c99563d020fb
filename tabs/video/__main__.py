"""`python -m tabs.video [studio.py's flags]`: the Video tab alone, served as the studio serves it."""

import sys

from studio import main

sys.exit(main(only="video"))
