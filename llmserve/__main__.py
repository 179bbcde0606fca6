"""`python -m llmserve` runs the llmserve console script."""

import sys

from llmserve.cli import main

sys.exit(main())
