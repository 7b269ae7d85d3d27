"""`python -m pipelines.cli`: the `heatsync` command from a checkout."""

from pipelines.cli import main

raise SystemExit(main())
