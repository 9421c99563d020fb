"""`python -m tabs.verify [studio.py's flags]`: the Verify tab alone, served as the studio serves it."""

import sys

from studio import main

sys.exit(main(only="verify"))
