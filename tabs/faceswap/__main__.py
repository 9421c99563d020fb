"""`python -m tabs.faceswap [studio.py's flags]`: the Face swap tab alone, served as the studio serves it."""

import sys

from studio import main

sys.exit(main(only="faceswap"))
