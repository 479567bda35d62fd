"""``python -m datastore``: the ``hisparc-datastore`` command."""

from datastore.cli import main

raise SystemExit(main())
