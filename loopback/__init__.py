"""One small HTTP server on loopback for the emulators of the harness (the Topcoder stand-in, the fake Lambda
endpoint, the fake ECS endpoint): a `ThreadingHTTPServer` on 127.0.0.1 (port 0 by default), one serve thread, a
silent request log, and one callable that turns a `Request` into a `Response` (decision 103).

    server = LoopbackServer(handle, name="fake-lambda", methods=("POST",)).start()
    ...  # point the client at server.url
    server.stop()
"""

from loopback.server import LoopbackServer, Request, RequestHandler, Response

__all__ = ["LoopbackServer", "Request", "RequestHandler", "Response"]
