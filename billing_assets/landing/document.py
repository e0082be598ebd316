"""A landing file read as one JSON document, streamed: the split form larger than a piece.

``json.loads`` of a 300 MB document holds it all (and its Python objects, several times its
size). This walks the top level instead: an object's keys and values, or an array's
elements, each value decoded on its own by the same decoder ``parse.loads`` uses, from a
window of text that only ever holds a few blocks. So a split document's ``data`` rows are
read one at a time; only a single value longer than ``VALUE_LIMIT`` characters cannot be
(no reading has one): such a document counts as unreadable as a whole, like a broken one.

Validation (``survey``) and reading (``data_rows``) are two passes: rows are only produced
once the whole document is known to be a complete split-form document, as a whole-file read
would decide, and once its columns (which may come after ``data``) are known.
"""

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from billing_assets.landing.parse import _json_int, _json_object, _NonFinite
from billing_assets.landing.pieces import READ_BLOCK, Reader

#: A value longer than this (in characters) is not decoded: the document is treated as unreadable.
VALUE_LIMIT = 4 << 20
#: JSON's whitespace, as ``json.loads`` skips it.
_WHITESPACE = re.compile(r"[ \t\n\r]*")
#: Characters a decoded value must leave before the window's end: a number cut at the window's
#: edge (``1.5e`` of ``1.5e+3``) would otherwise decode as a shorter one.
_MARGIN = 8


class NotOneDocument(ValueError):
    """The text is not one JSON value (or holds a value too long to decode within bounds)."""


class _Window:
    """The file's text from the current position on, decoded a block at a time."""

    def __init__(self, read: Reader, size: int, block: int) -> None:
        self.read, self.size, self.block = read, size, block
        self.offset = 0
        # Invalid bytes make the file unreadable anyway (a survey of its pieces says so first).
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self.text, self.pos, self.eof = "", 0, False
        # Made here, not as a module global: a global would hold a C scanner, which cannot be
        # pickled when a cluster or Spark Connect ships this module by value.
        self.json = json.JSONDecoder(parse_int=_json_int, parse_constant=_NonFinite, object_pairs_hook=_json_object)

    def more(self) -> None:
        data = self.read(self.offset, self.block) if self.offset < self.size else b""
        self.offset += len(data)
        self.eof = not data
        self.text = self.text[self.pos :] + self.decoder.decode(data, final=self.eof)
        self.pos = 0

    def peek(self) -> str:
        """The next character after whitespace ('' at the end of the text)."""
        while True:
            self.pos = _WHITESPACE.match(self.text, self.pos).end()
            if self.pos < len(self.text) or self.eof:
                return self.text[self.pos : self.pos + 1]
            self.more()

    def expect(self, chars: str) -> str:
        """Consume the next character after whitespace, which must be one of ``chars``."""
        char = self.peek()
        if not char or char not in chars:
            raise NotOneDocument(f"expected one of {chars!r} at character offset {self.pos}")
        self.pos += 1
        return char

    def value(self) -> object:
        """Decode the JSON value at the current position."""
        self.peek()
        while True:
            try:
                value, end = self.json.raw_decode(self.text, self.pos)
            except (ValueError, RecursionError) as exc:
                failure = exc
            else:
                if self.eof or end + _MARGIN <= len(self.text):
                    self.pos = end
                    return value
                failure = None
            if self.eof:
                raise NotOneDocument(str(failure))
            if len(self.text) - self.pos > VALUE_LIMIT:
                raise NotOneDocument(f"a value longer than {VALUE_LIMIT} characters, or invalid: {failure}")
            self.more()


@dataclass
class Survey:
    """What a whole-file ``json.loads`` would have found at the top level."""

    #: ``object``, ``array`` or ``scalar``.
    kind: str
    #: An object's (key, value) pairs in order; ``data``'s array value is replaced by ``[]``.
    pairs: list[tuple[str, object]] = field(default_factory=list)
    #: Elements of the top-level ``data`` array (of the last ``data`` key).
    rows: int = 0

    def doc(self) -> object:
        """The top level as ``parse.loads`` builds it, with ``data`` emptied (its rows are streamed)."""
        return _json_object(self.pairs) if self.kind == "object" else None


def _elements(window: _Window) -> Iterator[object]:
    """The elements of the array that starts at the current position."""
    window.expect("[")
    if window.peek() == "]":
        window.pos += 1
        return
    while True:
        yield window.value()
        if window.expect(",]") == "]":
            return


def _walk(read: Reader, size: int, block: int) -> Survey:
    """Walk the whole document, decoding one value at a time."""
    window = _Window(read, size, block)
    start = window.peek()
    if start == "{":
        survey = Survey("object")
        window.pos += 1
        if window.peek() == "}":
            window.pos += 1
        else:
            while True:
                if window.peek() != '"':
                    raise NotOneDocument("expected a property name")
                key = window.value()
                window.expect(":")
                if key == "data" and window.peek() == "[":
                    survey.rows = sum(1 for _ in _elements(window))
                    survey.pairs.append((key, []))
                else:
                    survey.pairs.append((key, window.value()))
                if window.expect(",}") == "}":
                    break
    elif start == "[":
        survey = Survey("array")
        survey.rows = sum(1 for _ in _elements(window))
    else:
        survey = Survey("scalar")
        window.value()
    if window.peek():
        raise NotOneDocument("extra data after the document")
    return survey


def survey(read: Reader, size: int, block: int = READ_BLOCK) -> Survey | None:
    """The document's top level, or ``None`` when the file is not exactly one JSON value."""
    try:
        return _walk(read, size, block)
    except NotOneDocument:
        return None


def data_rows(read: Reader, size: int, block: int = READ_BLOCK) -> Iterator[object]:
    """The elements of the top-level ``data`` array of a document surveyed as complete, in order, one at a time."""
    window = _Window(read, size, block)
    window.expect("{")
    if window.peek() == "}":
        return
    while True:
        key = window.value()
        window.expect(":")
        if key == "data" and window.peek() == "[":
            yield from _elements(window)
        else:
            window.value()
        if window.expect(",}") == "}":
            return
