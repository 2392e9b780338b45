"""`python -m tts_explorer`: the command line (see cli.py)."""
import sys

from .cli import main

sys.exit(main())
