"""The services layer: what the API and the CLI do, as functions over a Session.

Functions take a :class:`~sqlalchemy.orm.Session` and never commit: the caller owns
the transaction (``Store.write()`` / ``Store.read()``).
"""
