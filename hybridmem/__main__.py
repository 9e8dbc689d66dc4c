"""`python -m hybridmem`: the `hybridmem` command, for environments without its script."""

from hybridmem.cli import main

raise SystemExit(main())
