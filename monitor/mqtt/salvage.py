"""Reading the rows of a damaged outbox file, page by page, without SQLite's b-tree.

When an outbox file is torn (truncated, a page overwritten), SQLite refuses
to walk the table and ``sqlite3 .recover`` may fail too. The rows themselves
usually survive on their leaf pages, so this reads the file the way the SQLite
file format documents it (https://www.sqlite.org/fileformat2.html): every
page whose first byte says "table b-tree leaf" (0x0D) is parsed cell by cell,
each cell's record is decoded, and records shaped like an outbox row (nine
columns: NULL rowid alias, topic, payload, qos, retain, kind, priority,
created, size) are kept. Pages on the free list (deleted rows) are skipped, and
a page's newest copy in the WAL wins over the main file's::

    rows = salvage_rows(Path("outbox.sqlite3"))
    # [(id, topic, payload, qos, retain, kind, priority, created), ...]

Nothing here raises on bad bytes: a cell that does not decode is skipped.
"""

from __future__ import annotations

import struct
from pathlib import Path

Row = tuple[int, str, bytes, int, int, str, int, float]

#: Reading stops after this many bytes from a file (the outbox is bounded well below it).
MAX_BYTES = 256 * 1024 * 1024
_WAL_MAGIC = (0x377F0682, 0x377F0683)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A SQLite varint at ``pos``: (value, next position). IndexError past the end."""
    value = 0
    for i in range(8):
        byte = buf[pos + i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return (value << 8) | buf[pos + 8], pos + 9


def _value(serial: int, buf: bytes, pos: int) -> tuple[object, int]:
    if serial == 0:
        return None, pos
    if 1 <= serial <= 6:
        n = (1, 2, 3, 4, 6, 8)[serial - 1]
        if pos + n > len(buf):
            raise IndexError
        return int.from_bytes(buf[pos : pos + n], "big", signed=True), pos + n
    if serial == 7:
        if pos + 8 > len(buf):
            raise IndexError
        return struct.unpack(">d", buf[pos : pos + 8])[0], pos + 8
    if serial in (8, 9):
        return serial - 8, pos
    if serial >= 12:
        n = (serial - 12) // 2
        if pos + n > len(buf):
            raise IndexError
        raw = bytes(buf[pos : pos + n])
        return (raw if serial % 2 == 0 else raw.decode("utf-8")), pos + n
    raise ValueError(f"reserved serial type {serial}")


def _record(payload: bytes) -> list[object]:
    size, pos = _varint(payload, 0)
    serials = []
    while pos < size:
        serial, pos = _varint(payload, pos)
        serials.append(serial)
    values, pos = [], size
    for serial in serials:
        value, pos = _value(serial, payload, pos)
        values.append(value)
    return values


def _outbox_row(rowid: int, values: list[object]) -> Row | None:
    if len(values) != 9 or values[0] is not None:
        return None
    _, topic, payload, qos, retain, kind, priority, created, _size = values
    if not (
        isinstance(topic, str)
        and isinstance(payload, (bytes, str))
        and qos in (0, 1, 2)
        and retain in (0, 1)
        and isinstance(kind, str)
        and isinstance(priority, int)
        and isinstance(created, (int, float))
    ):
        return None
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return (rowid, topic, payload, int(qos), int(retain), kind, priority, float(created))


class _Pages:
    """The newest copy of each page: WAL frames over the main file."""

    def __init__(self, main: bytes, wal: bytes):
        self.size = _page_size(main) or _wal_page_size(wal) or 4096
        self.pages: dict[int, bytes] = {}
        for n in range(len(main) // self.size):
            self.pages[n + 1] = main[n * self.size : (n + 1) * self.size]
        if _wal_page_size(wal) == self.size:
            frame = 24 + self.size
            salt = wal[16:24]
            for off in range(32, len(wal) - frame + 1, frame):
                number = int.from_bytes(wal[off : off + 4], "big")
                if not number or wal[off + 8 : off + 16] != salt:
                    break  # frames of an earlier generation of the WAL, or garbage
                self.pages[number] = wal[off + 24 : off + frame]

    def get(self, number: int) -> bytes | None:
        return self.pages.get(number)


def _page_size(main: bytes) -> int | None:
    if len(main) < 100 or not main.startswith(b"SQLite format 3\x00"):
        return None
    size = int.from_bytes(main[16:18], "big")
    size = 65536 if size == 1 else size
    return size if size >= 512 and size & (size - 1) == 0 else None


def _wal_page_size(wal: bytes) -> int | None:
    if len(wal) < 32 or int.from_bytes(wal[0:4], "big") not in _WAL_MAGIC:
        return None
    size = int.from_bytes(wal[8:12], "big")
    return size if size >= 512 and size & (size - 1) == 0 else None


def _free_pages(pages: _Pages) -> set[int]:
    """Pages on the free list (they may still hold deleted rows), as far as it can be followed."""
    first = pages.get(1)
    if first is None:
        return set()
    free: set[int] = set()
    trunk = int.from_bytes(first[32:36], "big")
    seen: set[int] = set()
    while trunk and trunk not in seen and len(seen) < 100_000:
        seen.add(trunk)
        free.add(trunk)
        page = pages.get(trunk)
        if page is None:
            break
        count = int.from_bytes(page[4:8], "big")
        for i in range(min(count, (len(page) - 8) // 4)):
            free.add(int.from_bytes(page[8 + 4 * i : 12 + 4 * i], "big"))
        trunk = int.from_bytes(page[0:4], "big")
    return free


def _cells(pages: _Pages, number: int, page: bytes) -> list[tuple[int, bytes]]:
    """(rowid, payload) of each cell of a table leaf page.

    Overflow chains are followed while they read.
    """
    head = 100 if number == 1 else 0
    if page[head] != 0x0D:
        return []
    usable = pages.size  # reserved bytes per page are 0 for the outbox
    count = int.from_bytes(page[head + 3 : head + 5], "big")
    out = []
    for i in range(count):
        try:
            ptr = int.from_bytes(page[head + 8 + 2 * i : head + 10 + 2 * i], "big")
            length, pos = _varint(page, ptr)
            rowid, pos = _varint(page, pos)
            max_local = usable - 35
            if length <= max_local:
                out.append((rowid, bytes(page[pos : pos + length])))
                continue
            min_local = (usable - 12) * 32 // 255 - 23
            local = min_local + (length - min_local) % (usable - 4)
            if local > max_local:
                local = min_local
            data = bytearray(page[pos : pos + local])
            nxt = int.from_bytes(page[pos + local : pos + local + 4], "big")
            hops = 0
            while len(data) < length and nxt and hops < 10_000:
                over = pages.get(nxt)
                if over is None:
                    break
                data += over[4:usable]
                nxt = int.from_bytes(over[0:4], "big")
                hops += 1
            if len(data) >= length:
                out.append((rowid, bytes(data[:length])))
        except (IndexError, ValueError):
            continue
    return out


def salvage_rows(path: Path) -> list[Row]:
    """Every outbox row that can be read from ``path`` (and its ``-wal``), in id order."""

    def read(p: Path) -> bytes:
        try:
            if not p.is_file():
                return b""
            with p.open("rb") as f:
                return f.read(MAX_BYTES)
        except OSError:
            return b""

    pages = _Pages(read(path), read(Path(f"{path}-wal")))
    free = _free_pages(pages)
    rows: dict[int, Row] = {}
    for number, page in pages.pages.items():
        if number in free:
            continue
        for rowid, payload in _cells(pages, number, page):
            try:
                row = _outbox_row(rowid, _record(payload))
            except (IndexError, ValueError, UnicodeDecodeError):
                continue
            if row is not None:
                rows[rowid] = row
    return [rows[k] for k in sorted(rows)]
