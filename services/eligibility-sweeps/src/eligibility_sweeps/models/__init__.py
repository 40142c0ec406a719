"""Every table the sweeps service owns; imported whole by its Alembic tree."""

from rcm_kit.db import make_metadata

metadata = make_metadata()
