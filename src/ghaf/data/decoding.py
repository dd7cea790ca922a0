"""Text input in one explicit encoding: invalid bytes and unclosed quotes are refused, not guessed.

pyarrow's CSV reader takes any bytes: a column that is not valid UTF-8 silently becomes
``binary``, and a quote that never closes swallows the rest of the file as one value.
:class:`DecodedFile` sits between the file and the reader, decodes strictly and hands on
UTF-8, so the first bad byte is named with its line and offset; it also counts quotes,
so an odd count (the cheap sign of a quote left open) triggers the exact check in
:func:`unclosed_quote_line`.
"""

from __future__ import annotations

import codecs
import csv
from pathlib import Path
from types import TracebackType

import numpy as np

from ghaf.errors import InvalidInputError

DEFAULT_ENCODING = "utf-8"
_UTF8 = ("utf-8", "utf-8-sig")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def codec_name(encoding: str) -> str:
    """The canonical name of a text codec (``latin-1`` -> ``iso8859-1``).

    Raises:
        InvalidInputError: the name is not a text encoding Python knows.
    """
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        info = None
    # Codecs such as base64 or rot13 exist but do not turn bytes into text.
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise InvalidInputError(
            f"--encoding {encoding!r} is not a known text encoding",
            hint="use a Python codec name: utf-8, utf-16, latin-1, cp1252...",
        )
    return info.name


class DecodedFile:
    """A file read in ``encoding`` and handed on as UTF-8 through ``read(size)``.

    The first byte that does not decode ends the stream early, as if the file ended
    there, and is kept in :attr:`failure` for the caller to raise once the reader has
    stopped (an exception raised inside the reader's read call would come back wrapped
    in the reader's own error). UTF-8 input is validated and passed through unchanged.
    """

    def __init__(self, path: Path, encoding: str = DEFAULT_ENCODING, *, quote: str = '"') -> None:
        self.path = path
        self.encoding = codec_name(encoding)
        self.failure: InvalidInputError | None = None
        self.quotes = 0
        self._quote = ord(quote.encode("utf-8"))
        self._raw = path.open("rb")
        self._decoder = codecs.getincrementaldecoder(self.encoding)("strict")
        self._passthrough = self.encoding in _UTF8
        self._pending = bytearray()
        self._consumed = 0  # raw bytes read from the file
        self._eof = False
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of UTF-8 (all that is left when ``size`` is negative)."""
        if size > 0 and not self._pending and not self._eof:
            out = self._pull(size)  # the usual case: one block in, one block out, no copy
            if len(out) <= size:
                return out
            self._pending += out
        while not self._eof and (size < 0 or len(self._pending) < size):
            self._pending += self._pull(size if size > 0 else 1 << 20)
        if size < 0 or size >= len(self._pending):
            out = bytes(self._pending)
            self._pending.clear()
        else:
            out = bytes(self._pending[:size])
            del self._pending[:size]
        return out

    def drain(self) -> None:
        """Decode the rest of the file (to finish the quote count) without keeping it."""
        self._pending.clear()
        while not self._eof:
            self._pull(1 << 20)

    @property
    def odd_quotes(self) -> bool:
        """Whether the text read so far holds an odd number of quote characters."""
        return self.quotes % 2 == 1

    def close(self) -> None:
        self._raw.close()
        self.closed = True

    def __enter__(self) -> DecodedFile:
        return self

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()

    def _pull(self, size: int) -> bytes:
        chunk = self._raw.read(size)
        if self._consumed == 0 and self._passthrough:
            self._refuse_foreign_bom(chunk)
        self._consumed += len(chunk)
        if self.failure is not None:
            self._eof = True
            return b""
        try:
            # Pure ASCII is valid in every encoding we pass through: skip the decoder.
            if self._passthrough and chunk.isascii() and not self._decoder.getstate()[0]:
                text = None
            else:
                text = self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            self._fail(exc)
            return b""
        except UnicodeError as exc:  # utf-16/32 without a byte-order mark
            self.failure = InvalidInputError(
                f"{self.path}: {exc}", hint=f"name the byte order: --encoding {self.encoding}-le"
            )
            self._eof = True
            return b""
        out = chunk if self._passthrough or text is None else text.encode("utf-8")
        # numpy counts a byte ~3x faster than bytes.count; UTF-8 never reuses 0x22 in a sequence.
        self.quotes += int(np.count_nonzero(np.frombuffer(out, np.uint8) == self._quote))
        self._eof = not chunk
        return out

    def _refuse_foreign_bom(self, chunk: bytes) -> None:
        for bom, name in _BOMS:
            if chunk.startswith(bom):
                self.failure = InvalidInputError(
                    f"{self.path} is {name.upper()} text (it starts with a {name} byte-order "
                    f"mark), not {self.encoding}",
                    hint=f"pass --encoding {name}",
                )
                return

    def _fail(self, exc: UnicodeDecodeError) -> None:
        # The decoder's input is its held-back bytes plus this chunk: it ends where we are.
        offset = self._consumed - len(exc.object) + exc.start
        line = _line_at(self.path, self.encoding, offset)
        bad = " ".join(f"0x{b:02x}" for b in exc.object[exc.start : exc.end])
        hint = (
            "pass the file's encoding, e.g. --encoding latin-1, or save it as UTF-8"
            if self._passthrough
            else f"the file is not {self.encoding}: pass its encoding with --encoding"
        )
        self.failure = InvalidInputError(
            f"{self.path}: line {line}: byte {bad} at offset {offset} is not valid "
            f"{self.encoding} ({exc.reason})",
            hint=hint,
        )
        self._eof = True


def _line_at(path: Path, encoding: str, offset: int) -> int:
    """The line holding byte ``offset`` (error path only: it reads the file up to there)."""
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    lines, left = 1, offset
    with path.open("rb") as handle:
        while left > 0 and (chunk := handle.read(min(left, 1 << 20))):
            left -= len(chunk)
            lines += decoder.decode(chunk).count("\n")
    return lines


def unclosed_quote_line(path: Path, encoding: str, delimiter: str = ",") -> int | None:
    """The line where a record with a never-closed quote starts, or ``None`` if there is none.

    Runs Python's csv reader in strict mode over the whole file, so call it only when
    the cheap sign (an odd quote count, or a parse error) says it is worth it.
    """
    codec = codec_name(encoding)
    if codec == "utf-8":
        codec = "utf-8-sig"  # as pyarrow does, skip a UTF-8 byte-order mark
    end = 0
    try:
        with path.open(newline="", encoding=codec, errors="replace") as handle:
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            for _row in reader:
                end = reader.line_num
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return end + 1
    return None
