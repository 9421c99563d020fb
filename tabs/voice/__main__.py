"""`python -m tabs.voice [studio.py's flags]`: the Voice tab alone, served as the studio serves it."""

import sys

from studio import main

sys.exit(main(only="voice"))
