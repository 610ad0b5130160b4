"""HTTP: the API server (httptools-based HTTP/1.1) and the client used for receipt callbacks.

The generic server layer (``server``, ``router``, ``types``; no gateway logic) is re-exported here:

from smppgw.http import HttpServer, Request, Response, Router, error_response
"""

from .router import RouteHandler, Router
from .server import HttpServer, HttpStats
from .types import Handler, Request, Response, error_response

__all__ = ["Handler", "HttpServer", "HttpStats", "Request", "Response", "RouteHandler", "Router", "error_response"]
