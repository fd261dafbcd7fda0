"""``python -m app`` runs the fluorosim command line."""

from app.cli import main

raise SystemExit(main())
