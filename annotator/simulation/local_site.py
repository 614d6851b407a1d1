"""The site served from this process on a free loopback port, for the demo's simulated labelers.

The demo has no server running, and simulated labelers must go through the HTTP API like anyone else, so it
serves the WSGI app on a thread for as long as the labeling lasts. Production uses gunicorn.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler, get_internal_wsgi_application


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        pass  # one line per simulated request would bury the demo's progress


@contextmanager
def local_site_serve() -> Iterator[str]:
    """Serve the site on 127.0.0.1 on a free port; yields its base URL and stops it on exit."""
    server = ThreadedWSGIServer(("127.0.0.1", 0), _QuietHandler, allow_reuse_address=True)
    server.set_app(get_internal_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, name="local-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
