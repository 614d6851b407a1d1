"""Failed sign-ins, counted per username: past a limit, that username cannot sign in for a while.

Without a limit anyone can guess a labeler's or an administrator's password as fast as the site answers. Every
door that checks a password goes through `authenticate()` and so through annotator.backends (the login page,
the admin's login and the API's token endpoint), which counts here. The count lives in Django's cache, which
must be shared by the web server's workers in production (`CACHE_URL`, Redis); the default, each process's
memory, lets each worker count on its own, so the limit is then per worker.

Counted per username rather than per address: behind a proxy every request can come from the proxy's address,
and a limit per address would then lock everyone out together. The price: anyone can keep a known username
locked by failing on purpose. Sessions and API tokens already issued keep working meanwhile.
"""

import hashlib

from django.core.cache import cache

FAILURES_ALLOWED = 10
LOCK_SECONDS = 15 * 60
LOCKED_MESSAGE = f"Too many failed sign-ins for this username: try again in at most {LOCK_SECONDS // 60} minutes."


def _key(username: str) -> str:
    # Hashed: a username may hold characters or a length that a cache key may not.
    return "sign-in-failures:" + hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


def sign_in_locked(*, username: str) -> bool:
    return cache.get(_key(username), 0) >= FAILURES_ALLOWED


def sign_in_failed(*, username: str) -> None:
    """One more failure; the count goes when LOCK_SECONDS have passed since the first one."""
    key = _key(username)
    cache.add(key, 0, timeout=LOCK_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.add(key, 1, timeout=LOCK_SECONDS)


def sign_in_succeeded(*, username: str) -> None:
    cache.delete(_key(username))
