"""Spreadsheet files written as a stream: CSV and XLSX, whatever their length, in constant memory.

Cells a spreadsheet would read as a formula are neutralised as OWASP recommends: in CSV a text cell
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading apostrophe; in
XLSX every text is written as a string cell, never as a formula. The XLSX package is written as a ZIP
stream (entries with data descriptors), so its first bytes leave before the last row is read, and
nothing is kept on disk.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, TypedDict

from feedback_app.core.text import shown

BOM = "\ufeff".encode("utf-8")


TEXT, LABEL, DATE, DATETIME = "text", "label", "date", "datetime"


@dataclass(frozen=True)
class Column:
    header: str
    type: str  # TEXT (free text), LABEL (one of few values), DATE, DATETIME
    width: int  # in XLSX, characters



# --- formula injection -------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str | None) -> str:
    """A CSV cell a spreadsheet shows as text: a leading apostrophe before a formula's first character,
    and direction controls written out (``core.text.shown``)."""
    if not text:
        return ""
    text = shown(text)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# --- CSV ---------------------------------------------------------------------------------------

def _csv_formatters(cols: Iterable[Column]) -> list[Callable]:
    def as_date(v):
        return v.isoformat() if v is not None else ""

    def as_datetime(v):
        return v.isoformat(" ", "minutes") if v is not None else ""

    return [as_date if c.type == DATE else as_datetime if c.type == DATETIME else neutralise for c in cols]


def csv_stream(cols: tuple[Column, ...], chunks: Iterable[list[list]]) -> Iterator[bytes]:
    """UTF-8 with a BOM (so that Excel reads Chinese), CRLF line ends, every text cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(c.header) for c in cols])
    yield BOM + buffer.getvalue().encode("utf-8")
    formatters = _csv_formatters(cols)
    for rows in chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([f(v) for f, v in zip(formatters, row, strict=False)] for row in rows)
        yield buffer.getvalue().encode("utf-8")


# --- XLSX --------------------------------------------------------------------------------------

XLSX_COMPRESSLEVEL = 6
SHEET_MAX_ROWS = 1_048_575  # Excel's 1,048,576 rows, less the header
SHEET_MAX_BYTES = 1_900_000_000  # an entry stays under zipfile's 2 GiB limit without ZIP64
_EXCEL_EPOCH = date(1899, 12, 30).toordinal()
_MAX_CELL_CHARS = 32_767
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_NS_R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"

# Every .xml part not listed here is a worksheet: the content types can be written first, before
# it is known how many sheets the rows need.
_CONTENT_TYPES = (
    _XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    f'<Default Extension="xml" ContentType="{_CT}.worksheet+xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/>'
    '</Types>'
)
_ROOT_RELS = (
    _XML + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    '</Relationships>'
)
# cell styles: 0 plain, 1 date, 2 date and time, 3 header
_STYLES = (
    _XML + f'<styleSheet {_NS}>'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="等线"/><family val="2"/><charset val="134"/></font>'
    '<font><b/><sz val="11"/><name val="等线"/><family val="2"/><charset val="134"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>'
)


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _xml_text(text: str) -> str:
    """A ``<t>`` element holding ``text`` exactly (what XML cannot carry is dropped; direction controls
    written out, ``core.text.shown``)."""
    text = _NOT_XML.sub("", shown(text)[:_MAX_CELL_CHARS])
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    if text[:1].isspace() or text[-1:].isspace():
        return f'<t xml:space="preserve">{text}</t>'
    return f"<t>{text}</t>"


def _serial(value: date | datetime) -> str:
    """Excel's day number (1900 date system)."""
    days = value.toordinal() - _EXCEL_EPOCH
    if isinstance(value, datetime):
        seconds = value.hour * 3600 + value.minute * 60 + value.second
        return repr(days + seconds / 86400) if seconds else str(days)
    return str(days)


class _Pipe:
    """A write-only file for ZipFile: collects what is written until taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Nothing to release (ZipFile leaves a file it was given open)."""

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class _SheetState(TypedDict):
    entry: IO[bytes] | None  # the sheet being written
    row: int  # its last row number
    bytes: int  # how much of it is written


def _sheet_name(title: str, number: int) -> str:
    return title if number == 1 else f"{title}（{number}）"


def xlsx_stream(cols: tuple[Column, ...], chunks: Iterable[list[list]], *, title: str,
                sheet_max_rows: int = SHEET_MAX_ROWS) -> Iterator[bytes]:
    """An XLSX workbook as a ZIP stream: a header row, then the rows; a new sheet every ``sheet_max_rows``.

    Free texts are inline strings; the few labels are shared strings; dates and times are numbers in
    a date format, so that Excel sorts and filters them as dates.
    """
    pipe = _Pipe()
    package = zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=XLSX_COMPRESSLEVEL)
    package.writestr("[Content_Types].xml", _CONTENT_TYPES)
    package.writestr("_rels/.rels", _ROOT_RELS)
    letters = [_column_letter(i) for i in range(len(cols))]
    types = [c.type for c in cols]
    last_letter = letters[-1]
    widths = "".join(f'<col min="{i}" max="{i}" width="{c.width}" customWidth="1"/>'
                     for i, c in enumerate(cols, start=1))
    header_cells = "".join(f'<c r="{letter}1" t="inlineStr" s="3"><is>{_xml_text(c.header)}</is></c>'
                           for letter, c in zip(letters, cols, strict=False))
    shared: dict[str, int] = {}
    sheet_rows: list[int] = []  # the last row number of each sheet written
    state: _SheetState = {"entry": None, "row": 0, "bytes": 0}

    def open_sheet() -> None:
        number = len(sheet_rows) + 1
        entry = package.open(f"xl/worksheets/sheet{number}.xml", "w")
        selected = ' tabSelected="1"' if number == 1 else ""
        head = (
            _XML + f"<worksheet {_NS} {_NS_R}>"
            f'<sheetViews><sheetView workbookViewId="0"{selected}>'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
            f'<sheetFormatPr defaultRowHeight="15"/><cols>{widths}</cols>'
            f'<sheetData><row r="1">{header_cells}</row>'
        ).encode("utf-8")
        entry.write(head)
        state.update({"entry": entry, "row": 1, "bytes": len(head)})
        sheet_rows.append(1)

    def close_sheet() -> None:
        last, entry = state["row"], state["entry"]
        assert entry is not None  # a sheet is open
        entry.write(f'</sheetData><autoFilter ref="A1:{last_letter}{last}"/></worksheet>'.encode())
        entry.close()
        sheet_rows[-1] = last
        state["entry"] = None

    def write(parts: list[str]) -> None:
        if parts:
            data = "".join(parts).encode("utf-8")
            entry = state["entry"]
            assert entry is not None  # a sheet is open
            entry.write(data)
            state["bytes"] += len(data)
            parts.clear()

    open_sheet()
    yield pipe.take()
    for rows in chunks:
        parts: list[str] = []
        for row in rows:
            if state["row"] > sheet_max_rows or state["bytes"] > SHEET_MAX_BYTES:
                write(parts)
                close_sheet()
                open_sheet()
            n = state["row"] = state["row"] + 1
            cells = [f'<row r="{n}">']
            for letter, kind, value in zip(letters, types, row, strict=False):
                if value is None or value == "":
                    continue
                if kind == LABEL:
                    index = shared.get(value)
                    if index is None:
                        index = shared[value] = len(shared)
                    cells.append(f'<c r="{letter}{n}" t="s"><v>{index}</v></c>')
                elif kind == TEXT:
                    cells.append(f'<c r="{letter}{n}" t="inlineStr"><is>{_xml_text(value)}</is></c>')
                elif kind == DATE:
                    cells.append(f'<c r="{letter}{n}" s="1"><v>{_serial(value)}</v></c>')
                else:
                    cells.append(f'<c r="{letter}{n}" s="2"><v>{_serial(value)}</v></c>')
            cells.append("</row>")
            parts.append("".join(cells))
        write(parts)
        yield pipe.take()
    close_sheet()
    strings = "".join(f"<si>{_xml_text(s)}</si>" for s in shared)
    package.writestr("xl/sharedStrings.xml",
                     _XML + f'<sst {_NS} count="{len(shared)}" uniqueCount="{len(shared)}">{strings}</sst>')
    package.writestr("xl/styles.xml", _STYLES)
    sheets = "".join(f'<sheet name="{_sheet_name(title, i)}" sheetId="{i}" r:id="rId{i}"/>'
                     for i in range(1, len(sheet_rows) + 1))
    filters = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i - 1}" hidden="1">'
        f"'{_sheet_name(title, i)}'!$A$1:${last_letter}${last}</definedName>"
        for i, last in enumerate(sheet_rows, start=1))
    package.writestr("xl/workbook.xml", _XML + f"<workbook {_NS} {_NS_R}><bookViews><workbookView/></bookViews>"
                     f"<sheets>{sheets}</sheets><definedNames>{filters}</definedNames></workbook>")
    rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                   for i in range(1, len(sheet_rows) + 1))
    n = len(sheet_rows)
    rels += (f'<Relationship Id="rId{n + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
             f'<Relationship Id="rId{n + 2}" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>')
    package.writestr("xl/_rels/workbook.xml.rels", _XML + '<Relationships xmlns='
                     f'"http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>')
    package.close()
    yield pipe.take()
