"""``python -m tinyseg.cli``: the ``tinyseg`` console command."""
import sys

from . import main

sys.exit(main())
