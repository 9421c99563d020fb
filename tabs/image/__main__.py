"""`python -m tabs.image [studio.py's flags]`: the Image tab alone, served as the studio serves it."""

import sys

from studio import main

sys.exit(main(only="image"))
