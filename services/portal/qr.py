"""扫码评价 sheets: one per touchpoint and department, each with the QR code that opens its
rating page (a link signed with the portal's QR key, services/portal/touchpoints.py).

    python -m services.portal.qr --out qr-sheets                      # every department
    python -m services.portal.qr --out qr-sheets --department finance --touchpoint settlement

Writes ``<department>-<touchpoint>.svg`` (the sheet to print: the code with the department and
touchpoint in Chinese and English) and ``<department>-<touchpoint>.png`` (the code alone, for
other layouts), and prints each sheet's path and link. The links start with the portal's
public address (QINGLIAN_PUBLIC_URL, or ``--base-url``). Run with the same settings as the
portal (the same QR key), so the codes it prints are the ones it accepts.
"""

import argparse
import sys
from collections.abc import Sequence
from html import escape
from pathlib import Path

import segno

from schemas.satisfaction import Touchpoint
from services.common.departments import DepartmentCatalogue, DepartmentEntry
from services.portal.settings import PortalSettings
from services.portal.touchpoints import Sheet

SHEET_WIDTH, SHEET_HEIGHT = 595, 842
"""An A4 page in points."""
QR_SCALE = 8


def sheet_svg(link: str, department: DepartmentEntry, touchpoint: Touchpoint) -> str:
    """A printable page: title, the code, and what it is for (fonts the printer has)."""
    code = segno.make(link, error="m")
    size = code.symbol_size(scale=QR_SCALE, border=4)[0]
    left, top = (SHEET_WIDTH - size) // 2, 230
    font = 'font-family="Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif" text-anchor="middle"'
    lines = [
        (110, 40, "扫码评价"),
        (170, 26, f"{department.name_zh} · {touchpoint.label_zh}"),
        (205, 16, f"{department.name_en} · {touchpoint.value}"),
        (top + size + 45, 20, "请用手机扫描二维码，为本窗口服务评分（1–5 分）"),
        (top + size + 75, 14, "Scan to rate this service. Anonymous; about one minute."),
        (top + size + 110, 14, "如遇索要红包、加号费等，请在意见中写明，或在网站投诉举报。"),
    ]
    texts = "".join(
        f'<text x="{SHEET_WIDTH // 2}" y="{y}" font-size="{points}" {font}>{escape(text)}</text>'
        for y, points, text in lines
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SHEET_WIDTH}pt" '
        f'height="{SHEET_HEIGHT}pt" viewBox="0 0 {SHEET_WIDTH} {SHEET_HEIGHT}">'
        f'<rect width="100%" height="100%" fill="#fff"/>{texts}'
        f'<g transform="translate({left},{top})">{code.svg_inline(scale=QR_SCALE, border=4)}</g>'
        "</svg>\n"
    )


def write_sheets(
    out: Path,
    *,
    base_url: str,
    key: bytes,
    catalogue: DepartmentCatalogue,
    departments: Sequence[str],
    touchpoints: Sequence[Touchpoint],
) -> list[tuple[Path, str]]:
    """Each sheet's SVG path and link."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for code in departments:
        for touchpoint in touchpoints:
            link = base_url.rstrip("/") + Sheet(touchpoint, code).path(key)
            stem = out / f"{code}-{touchpoint}"
            svg = stem.with_suffix(".svg")
            svg.write_text(sheet_svg(link, catalogue.departments[code], touchpoint), "utf-8")
            segno.make(link, error="m").save(
                str(stem.with_suffix(".png")), scale=QR_SCALE, border=4
            )
            written.append((svg, link))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.portal.qr", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the sheets")
    parser.add_argument("--department", action="append", help="a department code (repeat)")
    parser.add_argument(
        "--touchpoint", action="append", choices=[str(t) for t in Touchpoint], help="(repeat)"
    )
    parser.add_argument("--base-url", help="the portal's public address (QINGLIAN_PUBLIC_URL)")
    args = parser.parse_args(argv)
    settings = PortalSettings()
    catalogue = DepartmentCatalogue.from_file(settings.departments)
    unknown = sorted(set(args.department or ()) - set(catalogue.departments))
    if unknown:
        print(f"unknown department(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    for svg, link in write_sheets(
        args.out,
        base_url=args.base_url or settings.public_url,
        key=settings.qr_key(),
        catalogue=catalogue,
        departments=args.department or list(catalogue.departments),
        touchpoints=[Touchpoint(t) for t in args.touchpoint or Touchpoint],
    ):
        print(f"{svg}\t{link}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
