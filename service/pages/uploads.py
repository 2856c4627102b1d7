"""A response's files from a plain HTML form, streamed: hashed as they are read.

Werkzeug's form parser would spool a file part to a temporary file before the view sees it;
here the multipart body is decoded as it arrives (``werkzeug.sansio.multipart``), the small
fields before the file are read first (the CSRF token first of all, checked before anything
else is done), and the file part's bytes go straight into the intake's digest pipeline,
exactly as a raw-body upload does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from typing import BinaryIO

from werkzeug.datastructures import Headers
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from custody.errors import BadRequest, TooLarge

READ_SIZE = 1 << 20
MAX_FIELD = 20_000 * 4  # the longest description, in UTF-8 bytes at most
MAX_FIELDS = 8


class StreamedForm:
    """The fields of a multipart form up to its file part, then that part as a stream.

    ``limit`` bounds the whole body and ``file_limit`` the file; reading past either raises
    TooLarge.
    """

    def __init__(self, stream: BinaryIO, content_type: str, limit: int, file_limit: int) -> None:
        mimetype, options = parse_options_header(content_type)
        boundary = options.get("boundary")
        if mimetype != "multipart/form-data" or not boundary:
            raise BadRequest("send the form as multipart/form-data")
        self._stream = stream
        self._limit = limit
        self._read = 0
        self._file_limit = file_limit
        self._file_read = 0
        self._decoder = MultipartDecoder(boundary.encode("latin-1"), max_form_memory_size=None)
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_headers = Headers()
        self._in_file = False
        self._done = False

    def _events(self) -> Iterator[object]:
        while True:
            event = self._decoder.next_event()
            if isinstance(event, NeedData):
                chunk = self._stream.read(READ_SIZE)
                self._read += len(chunk)
                if self._read > self._limit:
                    raise TooLarge(f"the form is larger than the limit of {self._limit} bytes")
                self._decoder.receive_data(chunk or None)
                continue
            yield event
            if isinstance(event, Epilogue):
                return

    def read_fields(self) -> dict[str, str]:
        """Read the fields that come before the file part (or all of them, if none)."""
        self._iter = self._events()
        name: str | None = None
        value = bytearray()
        for event in self._iter:
            if isinstance(event, Field):
                if len(self.fields) >= MAX_FIELDS:
                    raise BadRequest("the form has too many fields")
                name, value = event.name, bytearray()
            elif isinstance(event, File):
                self.filename = event.filename
                self.file_headers = event.headers
                self._in_file = True
                return self.fields
            elif isinstance(event, Data) and name is not None:
                value += event.data
                if len(value) > MAX_FIELD:
                    raise TooLarge(f"the field {name} is too long")
                if not event.more_data:
                    try:
                        self.fields[name] = value.decode("utf-8")
                    except UnicodeDecodeError:
                        raise BadRequest(f"the field {name} is not UTF-8 text") from None
                    name = None
        self._done = True
        return self.fields

    def read(self, size: int = -1) -> bytes:
        """The file part's bytes, as they arrive; b"" at its end."""
        while self._in_file:
            event = next(self._iter)
            if isinstance(event, Data):
                if not event.more_data:
                    self._in_file = False
                self._file_read += len(event.data)
                if self._file_read > self._file_limit:
                    raise TooLarge(f"the file is larger than the limit of {self._file_limit} bytes")
                if event.data:
                    return event.data
            else:
                raise BadRequest("the file part ended unexpectedly")
        return b""

    def finish(self) -> None:
        """Read the rest of the body (the browser is still sending it), keeping nothing."""
        if self._done:
            return
        for event in self._iter:
            if isinstance(event, (Field, File)):
                raise BadRequest("send the file as the form's last field")
        self._done = True

    def finish_quietly(self) -> None:
        """Read and drop the rest of a body that is refused, so the browser sees the answer."""
        with suppress(BadRequest, TooLarge, ValueError, StopIteration):
            if not hasattr(self, "_iter"):
                self._iter = self._events()
            for _ in self._iter:
                pass
        self._done = True
