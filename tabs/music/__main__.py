"""`python -m tabs.music [studio.py's flags]`: the Music tab alone, served as the studio serves it."""

import sys

from studio import main

sys.exit(main(only="music"))
