"""Rows from an ``http(s)`` URL: a Datasette table's JSON, any JSON or JSON lines, or CSV.

A response is one page. Its rows are read before the next page is asked for, so memory
holds one page at most (JSON lines and CSV stream within the page too). The next page is
the page's ``next_url`` (Datasette's JSON object), else the ``Link: <...>; rel="next"``
header (which Datasette sends for every shape, and many APIs do).

What a page may hold, recognised from ``--format``, else the URL's extension or the
content type for CSV/TSV/JSON lines, else the first bytes:

- a JSON object with a ``rows`` list (Datasette's ``.json``, ``?_shape=objects``): rows
  as objects, or as lists named by its ``columns``;
- a JSON array of objects (``?_shape=array``);
- JSON lines (``?_shape=array&_nl=on``, any ``.jsonl``);
- CSV or TSV (``.csv``, ``text/csv``, or ``--format csv``).

A private server: ``user:password@`` in the URL becomes HTTP basic authentication, and
``headers`` (``--header``: a Datasette token, an API key) go with each request. Both go
only to the first URL's scheme, host and port, a redirect or a next page there included,
so a page that links or redirects elsewhere does not receive them; the password never
appears in a message.

``urllib`` is imported when a URL is read, not when vibes starts.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from .. import jsontext
from ..errors import InputError
from .rows import FORMATS, Row, detect_format, parse_json_document, read_nl_lines, read_rows

if TYPE_CHECKING:
    from http.client import HTTPResponse

TIMEOUT = 30.0  # seconds to wait for a connection, and for each read
ACCEPT = "application/json, application/x-ndjson;q=0.9, text/csv;q=0.8, */*;q=0.5"
_CONTENT_TYPES = {
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
    "application/x-ndjson": "nl",
    "application/jsonl": "nl",
    "application/jsonlines": "nl",
    "application/json-seq": "nl",
}
_PEEK = 65536
#: What a header's name may hold (RFC 9110's token).
_TOKEN_CHARACTERS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def is_url(text: str) -> bool:
    """Whether an input names an ``http://`` or ``https://`` URL rather than a file."""
    return text[:8].lower().startswith(("http://", "https://"))


class UrlRows:
    """The rows of a URL and of the pages after it, read lazily: iterate once.

    ``total`` is the row count the first page announces (Datasette's
    ``filtered_table_rows_count``), else None; ``pages`` counts the pages read so far.
    """

    def __init__(
        self,
        url: str,
        format: str | None = None,
        encoding: str | None = None,
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if format is not None and format not in FORMATS:
            raise InputError(f"Unknown format {format!r}: use one of {', '.join(FORMATS)}")
        # Messages name the URL without its credentials.
        self.url, basic = _without_credentials(url)
        self._origin = _origin(self.url)
        self._headers = dict(headers or {})
        for name, value in self._headers.items():
            _check_header(name, value)
        if basic is not None and not any(k.lower() == "authorization" for k in self._headers):
            self._headers["Authorization"] = basic
        self.format = format
        self.encoding = encoding
        self.timeout = TIMEOUT if timeout is None else timeout
        self.total: int | None = None
        self.pages = 0

    def __iter__(self) -> Iterator[Row]:
        url: str | None = self.url
        seen: set[str] = set()
        while url is not None:
            if url in seen:
                raise InputError(f"{url}: the next page is a page read before (a loop)")
            seen.add(url)
            url = yield from self._page(url)

    def _page(self, url: str) -> Generator[Row, None, str | None]:
        """The rows of one page; returns the next page's URL, if any."""
        response = self._open(url)
        here = response.url or url  # after any redirect: relative links start from here
        with response:
            self.pages += 1
            headers = response.headers
            next_link = _next_link(headers.get_all("Link") or [], here)
            encoding = self.encoding or headers.get_content_charset() or "utf-8-sig"
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise InputError(f"{url}: unknown encoding {encoding!r}") from None
            stream = io.BufferedReader(_Body(response, url, self.timeout))
            fmt = self.format or _declared_format(url, headers.get_content_type())
            if fmt in ("csv", "tsv", "nl"):
                yield from read_rows(stream, url, fmt, encoding)
                return next_link
            head = stream.peek(_PEEK)[:_PEEK].lstrip(b"\xef\xbb\xbf").lstrip()
            if not head:
                return next_link  # an empty page
            if fmt is None and head[:1] not in (b"[", b"{"):
                raise InputError(
                    f"{url}: not JSON (content type {headers.get_content_type()}, starting "
                    f"{_snippet(head)}); give --format csv or tsv if it is CSV or TSV"
                )
            text = io.TextIOWrapper(stream, encoding=encoding, newline="")
            try:
                if fmt == "json" or head.startswith(b"["):
                    document: Any = parse_json_document(text.read(), url)
                else:
                    # An object first: a page of rows (one JSON document), or JSON lines.
                    lines = enumerate(text, 1)
                    first = next(x for x in lines if x[1].strip())  # head is not blank
                    try:
                        document = jsontext.loads(first[1])
                    except json.JSONDecodeError:  # one document over several lines
                        document = parse_json_document(first[1] + text.read(), url)
                    except ValueError as error:  # NaN, Infinity
                        raise InputError(f"{url} line {first[0]}: invalid JSON: {error}") from None
                    else:
                        following = next((x for x in lines if x[1].strip()), None)
                        if following is not None or not _is_page(document):
                            # JSON lines: the first (parsed again, to name its line), the rest.
                            others = iter([first] + ([following] if following else []))
                            yield from read_nl_lines(others, url)
                            yield from read_nl_lines(lines, url)
                            return next_link
            except UnicodeError as error:
                reason = error.reason if isinstance(error, UnicodeDecodeError) else error
                raise InputError(f"{url}: not valid {encoding} text ({reason})") from None
        # The whole page is read and the connection closed: now its rows.
        yield from self._rows_of(document, url)
        if (
            _is_page(document)
            and isinstance(document.get("next_url"), str)
            and document["next_url"]
        ):
            from urllib.parse import urljoin

            return urljoin(here, document["next_url"])
        return next_link

    def _rows_of(self, document: Any, url: str) -> Iterator[Row]:
        if isinstance(document, list):
            for number, value in enumerate(document, 1):
                if not isinstance(value, dict):
                    raise InputError(f"{url} item {number}: expected a JSON object")
                yield f"{url} item {number}", value
            return
        if not _is_page(document):
            raise InputError(
                f"{url}: expected a JSON array of objects, JSON lines, or a JSON object "
                "with a 'rows' list (such as a Datasette table's JSON)"
            )
        if self.pages == 1:
            for key in ("filtered_table_rows_count", "count"):
                count = document.get(key)
                if isinstance(count, int) and not isinstance(count, bool):
                    self.total = count
                    break
        columns = document.get("columns")
        for number, row in enumerate(document["rows"], 1):
            location = f"{url} row {number}"
            if isinstance(row, dict):
                yield location, row
            elif isinstance(row, list) and isinstance(columns, list):
                if len(row) != len(columns):
                    raise InputError(
                        f"{location}: {len(row)} values, but there are {len(columns)} columns"
                    )
                yield location, dict(zip(map(str, columns), row))
            else:
                raise InputError(f"{location}: expected a JSON object (or a list of values)")

    def _open(self, url: str) -> HTTPResponse:
        import http.client
        import urllib.error
        import urllib.request

        try:
            request = urllib.request.Request(url, headers={"Accept": ACCEPT, "User-Agent": "vibes"})
            self._authorize(request)
            opener = urllib.request.build_opener(_redirect_handler(self._authorize))
            response = opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            detail = _error_detail(error)
            error.close()
            raise InputError(f"{url}: HTTP {error.code} {error.reason}{detail}") from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise InputError(_timed_out(url, self.timeout)) from None
            reason = getattr(error.reason, "strerror", None) or error.reason
            raise InputError(f"Cannot reach {url}: {reason}") from None
        except TimeoutError:
            raise InputError(_timed_out(url, self.timeout)) from None
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise InputError(f"Cannot read {url}: {error or type(error).__name__}") from None
        return cast("HTTPResponse", response)

    def _authorize(self, request: Any) -> None:
        """Give ``request`` the credentials and headers, if it goes to the first URL's
        server. (Unredirected: urllib copies other headers wherever a redirect leads;
        _redirect_handler gives them back to a redirect that stays on that server.)"""
        if _origin(request.full_url) == self._origin:
            for name, value in self._headers.items():
                request.add_unredirected_header(name, value)


def read_url(
    url: str,
    format: str | None = None,
    encoding: str | None = None,
    *,
    timeout: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> UrlRows:
    """The rows at ``url`` and the pages after it (see the module's documentation);
    ``timeout`` (default ``TIMEOUT``) bounds the wait to connect and for each read;
    ``headers`` go with each request to the URL's own server."""
    return UrlRows(url, format, encoding, timeout=timeout, headers=headers)


def parse_header(text: str) -> tuple[str, str]:
    """``"Name: value"`` as (name, value); InputError when it is not a header."""
    name, colon, value = text.partition(":")
    # Nothing given is shown back: a mistyped header may be mostly its secret.
    if not colon:
        raise InputError("A header is 'Name: value' (the one given has no ':')")
    return _check_header(name.strip(), value.strip())


def _check_header(name: str, value: str) -> tuple[str, str]:
    """(name, value) when they make a header; else InputError, never showing the value."""
    if not name or not set(name) <= _TOKEN_CHARACTERS:
        raise InputError(
            "A header is 'Name: value' (the name given is empty, or holds a space or "
            "another character a header's name cannot)"
        )
    if "\n" in value or "\r" in value or "\0" in value:
        raise InputError(f"The value of header {name!r} holds a line break")
    return name, value


def _without_credentials(url: str) -> tuple[str, str | None]:
    """The URL without a ``user:password@`` part, and the basic authentication header
    those make (None without them). A URL whose host part does not parse is refused
    without being shown: a password holding a '/', '?' or '#' ends it early, and the
    rest of the password would be in the message."""
    import base64
    from urllib.parse import unquote, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise InputError(
            "The URL's host and port do not parse (in a user name or password, write "
            "'/', '?', '#', '@' and '%' as %2F, %3F, %23, %40 and %25)"
        ) from None
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    pair = f"{unquote(user)}:{unquote(password)}".encode()
    return urlunsplit(parts._replace(netloc=host)), "Basic " + base64.b64encode(pair).decode()


def _redirect_handler(authorize: Callable[[Any], None]) -> Any:
    """urllib's redirect handler, with each new request authorised again (``authorize``
    gives it the credentials when it stays on the first URL's server). Made when a URL is
    read: urllib is not imported when vibes starts."""
    import urllib.request

    class Redirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None:
                authorize(new)
            return new

    return Redirects()


def _origin(url: str) -> tuple[str, str]:
    """The scheme and host (with port) a URL is served from, as compared. (A URL that
    does not parse raises ValueError: _open reports it in one line.)"""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class _Body(io.RawIOBase):
    """A response body whose network failures are one-line ``InputError``s."""

    def __init__(self, response: HTTPResponse, url: str, timeout: float) -> None:
        self.response, self.url, self.timeout = response, url, timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import http.client

        try:
            return self.response.readinto(buffer)
        except TimeoutError:
            raise InputError(_timed_out(self.url, self.timeout)) from None
        except (OSError, http.client.HTTPException) as error:
            raise InputError(
                f"{self.url}: the connection failed while reading: {error or type(error).__name__}"
            ) from None


def _is_page(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("rows"), list)


def _declared_format(url: str, content_type: str) -> str | None:
    """CSV, TSV or JSON lines when the URL's extension or the content type says so."""
    from urllib.parse import urlsplit

    path = urlsplit(url).path.lower()
    if path.endswith((".jsonl", ".ndjson")):
        return "nl"
    if path.endswith((".csv", ".tsv", ".tab")):
        return detect_format(b"", path)
    return _CONTENT_TYPES.get(content_type)


def _next_link(values: list[str], url: str) -> str | None:
    """The ``rel="next"`` target of ``Link`` headers, made absolute."""
    from urllib.parse import urljoin

    for value in values:
        for link in value.split(","):
            target, _, params = link.partition(";")
            target = target.strip()
            rels = [
                p.split("=", 1)[1].strip().strip('"').lower().split()
                for p in params.split(";")
                if p.strip().lower().startswith("rel=")
            ]
            if target.startswith("<") and target.endswith(">") and any("next" in r for r in rels):
                return urljoin(url, target[1:-1])
    return None


def _error_detail(error: Any) -> str:
    """Datasette's (or any JSON API's) own words for an HTTP error, if it gave them."""
    try:
        body = error.read(4096)
        detail = json.loads(body).get("error")
    except Exception:  # any body at all, or none: the status line says enough
        return ""
    return f": {detail}" if isinstance(detail, str) and detail else ""


def _timed_out(url: str, timeout: float) -> str:
    return f"{url}: no answer within {timeout:g} seconds (timed out)"


def _snippet(head: bytes) -> str:
    return repr(head[:40].decode("utf-8", "replace"))
