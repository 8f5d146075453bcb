import sys

from staircase.cli import main

sys.exit(main())
