"""`python -m tabs.gan [studio.py's flags]`: the GAN lab tab alone, served as the studio serves it."""

import sys

from studio import main

sys.exit(main(only="gan"))
