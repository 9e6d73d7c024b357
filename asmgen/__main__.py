import sys

from asmgen.cli import main

sys.exit(main())
