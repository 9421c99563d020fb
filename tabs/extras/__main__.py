"""`python -m tabs.extras [studio.py's flags]`: the Extras tab alone, served as the studio serves it."""

import sys

from studio import main

sys.exit(main(only="extras"))
