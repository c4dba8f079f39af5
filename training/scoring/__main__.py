"""`python -m training.scoring`: the same as `sentiment-predict`."""

import sys

from training.scoring.cli import main

sys.exit(main())
