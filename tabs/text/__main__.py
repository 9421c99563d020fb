"""`python -m tabs.text [studio.py's flags]`: the Text tab alone, served as the studio serves it."""

import sys

from studio import main

sys.exit(main(only="text"))
