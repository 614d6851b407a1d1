"""Sessions kept in the database as Django keeps them, refusing keys that no session can have.

A session cookie holding a NUL character would otherwise reach PostgreSQL, which answers a NUL in a text
parameter with an error (a 500) rather than with no row. gunicorn refuses such headers itself (400); other
servers, `runserver` among them, pass them on. Such a cookie now counts as no session.
"""

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key):
        return super()._validate_session_key(key) and "\x00" not in key
