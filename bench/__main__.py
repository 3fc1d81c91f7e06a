"""``python -m bench [--quick]``: see bench/runner.py."""

from bench.runner import main

raise SystemExit(main())
