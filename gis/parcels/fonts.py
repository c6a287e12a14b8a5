"""DejaVu Sans, the extract's typeface (Vietnamese diacritics; Debian package fonts-dejavu-core,
which scripts/setup.sh installs): where it is, and how wide a label set in it is.

The extract's map places its labels itself (gis/parcels/extract.py keeps them clear of the scale
bar and the north arrow), so it needs the width of a text before anything is drawn. The HTML
(the browser's DejaVu Sans) and the PDF (reportlab with the same file) set the text with the
same advance widths, so one measurement serves both.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from reportlab.pdfbase.ttfonts import TTFont

FONT_DIRS = (os.environ.get("GEOIOC_FONT_DIR", ""), "/usr/share/fonts/truetype/dejavu",
             "/usr/share/fonts/dejavu", "/usr/local/share/fonts")
FILES = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}
# DejaVu Sans's ascent and descent (em): the height of a line's ink box around its baseline.
ASCENT = 0.929
DESCENT = 0.236
# Without the font file: a width no DejaVu Sans label exceeds per character (digits are 0.64 em,
# bold 0.70; capitals up to 0.87), so a label measured this way is never placed too close.
FALLBACK_EM = {False: 0.8, True: 0.88}


def font_file(bold: bool = False) -> Path | None:
    for d in FONT_DIRS:
        path = Path(d) / FILES[bold]
        if d and path.is_file():
            return path
    return None


@lru_cache(maxsize=2)
def _metrics(bold: bool) -> TTFont | None:
    path = font_file(bold)
    return TTFont(f"geoioc-metrics-{int(bold)}", str(path)) if path else None


def text_width(text: str, size: float, bold: bool = False) -> float:
    """The advance width of TEXT at SIZE (any unit: the result is in the same one)."""
    font = _metrics(bold)
    if font is None:
        return len(text) * FALLBACK_EM[bold] * size
    return float(font.stringWidth(text, size))
