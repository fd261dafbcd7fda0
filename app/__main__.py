"""``python -m fluorosim.app`` runs the fluorosim command line."""

from fluorosim.app.cli import main

raise SystemExit(main())
