"""An incremental Server-Sent-Events decoder (WHATWG event-stream interpretation).

Feed it the arbitrary byte chunks of a ``text/event-stream`` body; it returns the
events each chunk completes. Line ends may be CR, LF or CRLF, and a chunk boundary
anywhere (inside a line, a UTF-8 character or a CRLF pair) never changes the result.
Lines are UTF-8, decoded strictly: invalid bytes raise
``StreamError("malformed_event")`` instead of being replaced. The events completed
before an invalid line are never lost: when a chunk holds both, ``feed`` returns those
events and the error is raised by :meth:`SSEDecoder.check` (or the next call).
"""

from __future__ import annotations

from dataclasses import dataclass

from rx_allm.errors import StreamError

#: The size of one event above which a stream ends with ``StreamError("malformed_event")``.
#: 32 MiB: the largest legitimate events (a tool call's arguments, a Responses API
#: ``response.completed`` repeating the whole answer) are a few MB; a bigger one is a
#: misbehaving or hostile server, and without a bound it would grow the client's memory
#: until EOF. A call sets another with the ``max_event_bytes`` option.
DEFAULT_MAX_EVENT_BYTES = 32 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_CR = 13
_LF = 10


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event: its type, its data lines joined by LF, the last event id, its retry."""

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Turns ``text/event-stream`` byte chunks into :class:`SSEEvent` objects.

    ``max_event_bytes`` bounds one event: the bytes of all its lines since the previous
    blank line (comments included, each line end counted as one byte), a line still
    arriving included, so an oversized event fails before it is buffered whole. Going
    over it raises ``StreamError("malformed_event")``; the decoder is unusable afterwards.
    ``provider`` is named in those errors, whose ``event_index`` counts the event that failed.
    """

    __slots__ = (
        "_after_cr",
        "_data",
        "_dispatched",
        "_event",
        "_event_bytes",
        "_failure",
        "_head",
        "_id",
        "_in_event",
        "_max_event_bytes",
        "_partial_len",
        "_pieces",
        "_provider",
        "_retry",
    )

    def __init__(self, max_event_bytes: int | None = None, *, provider: str | None = None) -> None:
        self._max_event_bytes = max_event_bytes
        self._provider = provider
        self._dispatched = 0  # events returned so far
        self._failure: StreamError | None = None  # an invalid line after events already returned
        self._head: bytes | None = b""  # the stream's first bytes while a BOM is still possible
        self._after_cr = False  # the last byte fed was CR: a leading LF completes that CRLF
        self._pieces: list[bytes] = []  # the unfinished line, as received
        self._partial_len = 0
        self._in_event = False  # a non-blank line was seen since the last blank line
        self._data: list[str] = []
        self._event_bytes = 0
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None

    @property
    def has_partial(self) -> bool:
        """True if the stream so far does not end on an event boundary (it looks truncated)."""
        return bool(self._head or self._pieces) or self._in_event

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk`` and return the events it completes, in order."""
        if self._failure is not None:
            raise self._failure
        if self._head is not None:
            head = self._head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head
                return []
            self._head = None
            chunk = head.removeprefix(_BOM)
        if self._after_cr and chunk:
            self._after_cr = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._after_cr = chunk[-1] == _CR
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            if chunk:
                self._pieces.append(chunk)
                self._partial_len += len(chunk)
                self._check_size(self._partial_len + self._event_bytes)
            return []
        lines, invalid = self._complete_lines(chunk[:end])
        events = self._interpret(lines)
        self._dispatched += len(events)
        if invalid is not None:
            self._failure = self._error(f"invalid UTF-8 in SSE stream: {invalid.reason}", invalid)
            if not events:
                raise self._failure from invalid
            return events
        self._in_event = lines[-1] != ""
        tail = chunk[end + 1 :]
        self._partial_len = len(tail)
        if tail:
            self._pieces.append(tail)
            self._check_size(self._partial_len + self._event_bytes)
        return events

    def check(self) -> None:
        """Raise the error of an invalid line whose preceding events ``feed`` already returned.

        At the end of the stream an event without its closing blank line is discarded (nothing
        to return); :attr:`has_partial` tells whether the stream was cut short.
        """
        if self._failure is not None:
            raise self._failure

    def _complete_lines(self, head: bytes) -> tuple[list[str], UnicodeDecodeError | None]:
        """Decode the lines completed by ``head``, the first one prefixed by the buffered partial line.

        At an invalid line, the lines before it are returned with the decoding error.
        """
        if self._pieces:
            self._pieces.append(head)
            head = b"".join(self._pieces)
            self._pieces = []
        try:
            return head.decode().split("\n"), None
        except UnicodeDecodeError as exc:
            cut = head.rfind(b"\n", 0, exc.start)
            return (head[:cut].decode().split("\n") if cut >= 0 else []), exc

    def _interpret(self, lines: list[str]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        data = self._data
        event_type = self._event
        last_id = self._id
        retry = self._retry
        limit = self._max_event_bytes
        size = self._event_bytes
        for line in lines:
            if not line:
                if data:
                    events.append(SSEEvent(event_type or "message", "\n".join(data), last_id, retry))
                    data = []
                event_type = ""
                retry = None
                size = 0
                continue
            if limit is not None:
                size += (len(line) if line.isascii() else len(line.encode())) + 1
                self._check_size(size)
            if line.startswith("data: "):
                name = "data"
                value = line[6:]
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                event_type = value
            elif name == "id" and "\0" not in value:
                last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                retry = int(value)
        self._data = data
        self._event = event_type
        self._id = last_id
        self._retry = retry
        self._event_bytes = size
        return events

    def _check_size(self, size: int) -> None:
        limit = self._max_event_bytes
        if limit is not None and size > limit:
            raise self._error(f"SSE event exceeds max_event_bytes={limit} ({size} bytes buffered)")

    def _error(self, message: str, cause: UnicodeDecodeError | None = None) -> StreamError:
        return StreamError(
            "malformed_event",
            message,
            provider=self._provider,
            event_index=self._dispatched + 1,
            cause=cause,
        )


__all__ = ["SSEDecoder", "SSEEvent"]
