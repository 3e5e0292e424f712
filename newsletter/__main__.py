"""``python -m newsletter`` runs the CLI."""

from __future__ import annotations

from newsletter.cli import main

main()
