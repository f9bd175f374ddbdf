import sys

from mrtcurate.cli import main

sys.exit(main())
