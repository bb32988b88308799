"""What ponder may say of outside text: URLs without their secrets, and a
foreign body by its shape rather than its content.

Operators put credentials in URLs (``http://user:password@vllm:8000``,
``?api_key=...``) and upstreams answer with proxies' HTML pages that quote
internal hosts. Anything of that kind that reaches an error, a log line or a
listing goes through here first: the server, the remote engine and the
remote PRM use the same functions.
"""

from __future__ import annotations

import re
import socket
import ssl

HIDDEN = "***"
_USER_INFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s'\"<>]+@")
_QUERY = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^?#\s'\"<>]*\?)"
                    r"(?P<query>[^#\s'\"<>]*)")

_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,63}")
"""A media type as RFC 6838 spells one; anything else is not repeated."""


def _hide_values(query: str) -> str:
    pairs = (pair.partition("=") for pair in query.split("&"))
    return "&".join(key + (f"={HIDDEN}" if equals else "") for key, equals, _ in pairs)


def redact(text: str) -> str:
    """``text`` with the user info and query values of every URL in it
    replaced by ``***``: the host and path stay, so the line still says
    where, but never with what key."""
    text = _USER_INFO.sub(lambda match: f"{match['scheme']}{HIDDEN}@", text)
    return _QUERY.sub(lambda match: match["head"] + _hide_values(match["query"]), text)


def describe_body(content_type: str | None, size: int) -> str:
    """A body that is not the JSON ponder expected, named by its media type
    and length: its text may be a proxy's error page, which quotes internal
    addresses (and, shown in a browser, could carry markup)."""
    media = (content_type or "").partition(";")[0].strip()
    if _MEDIA_TYPE.fullmatch(media):
        return f"a {media.lower()} body of {size} bytes"
    return f"a body of {size} bytes"


_CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (socket.gaierror, "host name not found"),
    (ssl.SSLError, "TLS handshake failed"),
    (ConnectionResetError, "connection reset"),
    (BrokenPipeError, "connection broken"),
    (TimeoutError, "timed out"),
)


def failure_cause(error: BaseException) -> str | None:
    """What the operating system said went wrong under an HTTP client's
    exception, in a few plain words (None: nothing it names). The client's
    own text is not used: it may quote the URL, credentials and all."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        for kind, words in _CAUSES:
            if isinstance(cause, kind):
                return words
        cause = cause.__cause__ or cause.__context__
    return None
