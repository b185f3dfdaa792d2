"""``python3 -m hazmat.tasks.reference``: print, ``--write`` or ``--check`` the reference."""

from hazmat.tasks.reference.document import main

raise SystemExit(main())
