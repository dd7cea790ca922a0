"""uvicorn's httptools protocol, answering a request it cannot parse as a problem.

A request the HTTP parser refuses (a request line and headers over its 80 KiB, a
malformed line) never reaches the app: uvicorn answers it itself with a ``text/plain``
400. Every other refusal of the API is ``application/problem+json`` naming the fix, so
this protocol answers those the same way (clients and the OpenAPI document see one shape).
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ghaf.server.problems import PROBLEM_JSON

UNPARSABLE_HINT = (
    "send a well-formed HTTP/1.1 request whose request line and headers stay under 80 KiB "
    "together; send long values in a JSON body instead of the query string"
)


def unparsable_body(reason: str) -> bytes:
    """The problem+json body answering a request the parser refused for ``reason``."""
    return orjson.dumps(
        {
            "type": "https://ghaf.dev/problems/unparsable-request",
            "title": f"the request is not valid HTTP: {reason}",
            "status": 400,
            "detail": f"the request is not valid HTTP: {reason}",
            "hint": UNPARSABLE_HINT,
        }
    )


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    """``http="httptools"`` whose parser-level 400 is a problem+json body."""

    def send_400_response(self, msg: str) -> None:
        body = unparsable_body(msg.rstrip("."))
        content = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + PROBLEM_JSON.encode("ascii") + b"\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
