"""`python -m training` runs `sentiment-train`."""

from training.cli import train_main

raise SystemExit(train_main())
