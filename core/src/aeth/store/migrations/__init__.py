"""Alembic migrations of the store (``script_location = aeth.store:migrations``), run by
:func:`aeth.store.migrate.upgrade` whenever a store is opened."""

#: the newest revision; a test checks it is Alembic's head, so opening an up-to-date database
#: needs no Alembic import
HEAD = "0001"
