"""A landing file in pieces: byte ranges that each own the lines starting inside them.

A file larger than one piece is read as several pieces, each by its own Spark task, so no
task (and no process) ever holds a whole file. Piece ``[start, end)`` owns every line whose
first byte lies in it: a line straddling ``end`` belongs to this piece and is read to its
``\\n``; the next piece skips it. So every line is read exactly once, whatever the piece size.
Only ``\\n`` ends a line (JSON lines), and reads are bounded: ``READ_BLOCK`` bytes at a time,
and a line longer than ``LINE_LIMIT`` bytes is counted, not kept (it can only be quarantined).

Only the standard library is used, so the functions travel to executors by value.
"""

import codecs
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

#: Bytes asked of the file at a time.
READ_BLOCK = 4 << 20
#: Lines up to this many bytes are kept whole. A longer one has more than 1 MiB characters
#: (4 bytes a character at most), which no reading has: only its head and length are kept.
LINE_LIMIT = (4 << 20) + 8
#: Bytes of UTF-8 continuation (``10xxxxxx``): every other byte starts a character.
_CONTINUATION = bytes(range(0x80, 0xC0))

#: ``read(offset, size)``: up to ``size`` bytes of the file from ``offset`` (fewer only at its end).
Reader = Callable[[int, int], bytes]


@dataclass(frozen=True)
class LongLine:
    """A line over ``LINE_LIMIT`` bytes: its first bytes, its length, and what a survey needs of the rest."""

    offset: int
    head: bytes
    size: int
    #: Characters of the line without a final ``\\r`` (exact when the line is valid UTF-8).
    chars: int
    #: ``str.strip`` leaves nothing (not a record), and likewise for JSON's own whitespace.
    blank: bool
    json_blank: bool
    #: The first byte that is not UTF-8 (file offset, decoder's reason), and whether a NUL occurs.
    bad_utf8: tuple[int, str] | None
    nul: bool


def plan_pieces(size: int, piece_bytes: int) -> list[tuple[int, int]]:
    """The byte ranges ``[start, end)`` of a ``size``-byte file cut every ``piece_bytes`` (one for an empty file)."""
    if piece_bytes < 1:
        raise ValueError(f"a piece must be at least one byte, got {piece_bytes}")
    if size <= piece_bytes:
        return [(0, size)]
    return [(start, min(start + piece_bytes, size)) for start in range(0, size, piece_bytes)]


def handle_reader(handle) -> Reader:
    """A ``Reader`` over an open binary file (``pread`` for an OS file, seek and read otherwise)."""
    try:
        fd = handle.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is not None:
        return lambda offset, size: os.pread(fd, size, offset)

    def read(offset: int, size: int) -> bytes:
        handle.seek(offset)
        return handle.read(size)

    return read


def _first_line_start(read: Reader, start: int, size: int, block: int) -> int:
    """The offset of the first line starting at or after ``start`` (``size``: none)."""
    if start == 0:
        return 0
    position = start - 1  # a line starts at ``start`` exactly when the byte before it is ``\n``
    while position < size:
        data = read(position, block)
        if not data:
            break
        found = data.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(data)
    return size


def _chars(data: bytes) -> int:
    return len(data.translate(None, _CONTINUATION))


def piece_runs(
    read: Reader, start: int, end: int, size: int, block: int | None = None, limit: int | None = None
) -> Iterator[tuple[int, bytes] | LongLine]:
    """The lines owned by piece ``[start, end)`` in file order, as runs of whole lines or single long lines.

    A run is ``(offset, data)``: ``data`` holds whole lines, each ended by ``\\n``, except a
    last line of the file that has none. Memory stays within about ``block + limit`` bytes
    (defaults: ``READ_BLOCK`` and ``LINE_LIMIT``).
    """
    block, limit = block or READ_BLOCK, limit or LINE_LIMIT
    at = _first_line_start(read, start, size, block)
    buffer = b""
    while at < end and at < size:  # the line starting at ``at`` is owned
        data = read(at + len(buffer), block)
        if not data:  # the file ends: its last line has no ``\n``
            if buffer:
                yield at, buffer
            return
        buffer += data
        # The line holding byte end - 1 is the last one owned: it ends at the first ``\n`` from there.
        last = buffer.find(b"\n", max(0, end - 1 - at))
        if last >= 0:
            yield at, buffer[: last + 1]
            return
        cut = buffer.rfind(b"\n")
        if cut >= 0:
            yield at, buffer[: cut + 1]
            at, buffer = at + cut + 1, buffer[cut + 1 :]
        elif len(buffer) > limit:
            line = _long_line(read, at, buffer, block, limit)
            yield line
            # The line and its ``\n`` are consumed; it was the last owned if it reached end - 1.
            at, buffer = at + line.size + 1, b""


class _LineScan:
    """Length, characters, whitespace and UTF-8 validity of a line fed part by part."""

    def __init__(self, at: int) -> None:
        self.size = self.chars = 0
        self.last = b""
        self.blank = self.json_blank = True
        self.bad_utf8: tuple[int, str] | None = None
        self.nul = False
        self.pending, self.pending_at = b"", at
        self.text = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, part: bytes) -> None:
        if not part:
            return
        self.size, self.chars, self.last = self.size + len(part), self.chars + _chars(part), part[-1:]
        self.nul = self.nul or b"\x00" in part
        if self.blank or self.json_blank:
            text = self.text.decode(part)
            if self.pending_at == 0 and self.size == len(part):
                text = text.removeprefix("\ufeff")  # the file's byte order mark is no text of its first line
            self.blank = self.blank and not text.strip()
            self.json_blank = self.json_blank and not text.strip(" \t\r")
        self._check(part, final=False)

    def _check(self, part: bytes, final: bool) -> None:
        if self.bad_utf8 is not None:
            return
        data = self.pending + part
        try:
            _, used = codecs.utf_8_decode(data, "strict", final)
        except UnicodeDecodeError as exc:
            self.bad_utf8 = (self.pending_at + exc.start, exc.reason)
            return
        self.pending, self.pending_at = data[used:], self.pending_at + used

    def finish(self, at_end_of_file: bool) -> None:
        # A whole-file decode sees the ``\n`` after the line: an unfinished character before it
        # is an "invalid continuation byte", at the end of the file an "unexpected end of data".
        self._check(b"" if at_end_of_file else b"\n", final=True)


def _long_line(read: Reader, at: int, buffer: bytes, block: int, limit: int) -> LongLine:
    """Read to the end of a line over ``limit`` bytes, keeping only its head."""
    scan = _LineScan(at)
    scan.feed(buffer)
    at_end = False
    while True:
        data = read(at + scan.size, block)
        if not data:
            at_end = True
            break
        found = data.find(b"\n")
        scan.feed(data if found < 0 else data[:found])
        if found >= 0:
            break
    scan.finish(at_end)
    chars = scan.chars - (1 if scan.last == b"\r" else 0)
    return LongLine(at, buffer[:limit], scan.size, chars, scan.blank, scan.json_blank, scan.bad_utf8, scan.nul)


def piece_lines(read: Reader, start: int, end: int, size: int, **kwargs) -> Iterator[tuple[int, bytes | LongLine]]:
    """Each owned line as ``(offset, bytes without its \\n)`` or ``(offset, LongLine)``: for tests and surveys."""
    for run in piece_runs(read, start, end, size, **kwargs):
        if isinstance(run, LongLine):
            yield run.offset, run
            continue
        offset, data = run
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()  # the empty text after the run's last ``\n`` is the next run's business
        for line in lines:
            yield offset, line
            offset += len(line) + 1
