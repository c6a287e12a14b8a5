"""The HTTP/1.1 protocol `geoioc serve` runs: uvicorn's httptools parser, with a bound on a
request's head.

Why httptools: uvicorn's pure-Python h11 parser was the largest single cost of a citizen report
left in the server process (bench/README.md, intake): 2.90 M instructions per report with h11,
2.42 M with httptools, the same app. Why the bound: h11 refuses a request line and headers past
`h11_max_incomplete_event_size` (we allow MAX_REQUEST_HEAD, 1 MiB: long CQL2 filters), while
uvicorn's httptools protocol buffers any amount; this subclass answers a head past the bound
with the same bare 400 uvicorn gives a malformed request, and closes the connection. And
httptools' URL splitter (parse_url) keeps offsets in 16 bits, so a URL past 65,535 bytes was a
400 where h11 served it: such a URL's query string is split off here.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The request line and headers may take 1 MiB (uvicorn's h11 default, 16 KiB, refused with a bare
# text/plain 400 the URLs that /openapi.json documents as valid: a CQL2 filter of up to 64,000
# characters, percent-encoded, with a detailed polygon in it).
MAX_REQUEST_HEAD = 1 << 20
# The longest URL httptools.parse_url takes.
PARSE_URL_MAX = 0xFFFF


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol; a head longer than MAX_REQUEST_HEAD is a 400. Counted per
    chunk received while a head is incomplete (a chunk may also hold the end of the previous
    request's body: the bound is approximate by at most one read, 256 KiB, never below 768 KiB)."""

    _head_bytes = 0
    _in_head = True

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        url = self.url
        if len(url) <= PARSE_URL_MAX:
            super().on_headers_complete()
            return
        # A long URL (a CQL2 filter with a detailed polygon, percent-encoded): uvicorn splits the
        # path alone, the query string is set here (the request's task has not run yet).
        path, _, query = url.partition(b"?")
        self.url = path
        try:
            super().on_headers_complete()
        finally:
            self.url = url
        self.scope["query_string"] = query.partition(b"#")[0]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_HEAD:
                self.logger.warning("Request head too large.")
                self.send_400_response("Invalid HTTP request received.")
