"""Legacy Vietnamese text encodings: TCVN3 (TCVN 5712:1993, the .VnTime fonts) and VNI-Windows.

Why this exists: attribute tables made with pre-Unicode Vietnamese software store text as
single bytes that only look right in a matching font. GDAL knows neither encoding, so such a
.dbf opens as "X· Hoµ B×nh" (TCVN3) or "Xaõ Hoøa Bình" (VNI) instead of "Xã Hoà Bình". Imports
detect them and convert to Unicode; exports can write TCVN3 for legacy software on request.

Detection does not trust byte statistics alone: each candidate decoding is scored by the share
of its words that are well-formed Vietnamese syllables (an initial consonant, one to three
vowels, an allowed final consonant, at most one tone mark). Mojibake fails that test at once
("hoµ", "b×nh"), while the right decoding passes nearly every word.

TCVN3 table: TCVN 5712:1993 VN1 (identical to glibc iconv's TCVN5712-1 for every byte we
decode). VN3, the variant of the .VnTime fonts, is the same table without the capitals with
tone marks; decoding with VN1 therefore reads both. Encoding writes VN1 bytes from 0x80 up, and
the twelve capitals VN1 puts among the control bytes 0x01..0x17 (Ú, Ụ, Ừ, Ử, Ữ, Ứ, Ự, Ỳ, Ỷ, Ỹ, Ý,
Ỵ) as their lower-case letters: control bytes in a .dbf break legacy readers, and VN3 software
shows capitals through its separate .VnTimeH font anyway.

VNI-Windows writes a vowel with marks as the ASCII base letter followed by one Windows-1252
character per mark group ("Vieät" = "Việt"); only đ, ơ, ư and the i/ỵ forms are single bytes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

# --- TCVN3 ---------------------------------------------------------------------------------
_TCVN3_HIGH = (
    "\u00c0\u1ea2\u00c3\u00c1\u1ea0\u1eb6\u1eac\u00c8\u1eba\u1ebc\u00c9\u1eb8\u1ec6\u00cc\u1ec8\u0128"  # 0x80
    "\u00cd\u1eca\u00d2\u1ece\u00d5\u00d3\u1ecc\u1ed8\u1edc\u1ede\u1ee0\u1eda\u1ee2\u00d9\u1ee6\u0168"  # 0x90
    "\u00a0\u0102\u00c2\u00ca\u00d4\u01a0\u01af\u0110\u0103\u00e2\u00ea\u00f4\u01a1\u01b0\u0111\u1eb0"  # 0xA0
    "\u0300\u0309\u0303\u0301\u0323\u00e0\u1ea3\u00e3\u00e1\u1ea1\u1eb2\u1eb1\u1eb3\u1eb5\u1eaf\u1eb4"  # 0xB0
    "\u1eae\u1ea6\u1ea8\u1eaa\u1ea4\u1ec0\u1eb7\u1ea7\u1ea9\u1eab\u1ea5\u1ead\u00e8\u1ec2\u1ebb\u1ebd"  # 0xC0
    "\u00e9\u1eb9\u1ec1\u1ec3\u1ec5\u1ebf\u1ec7\u00ec\u1ec9\u1ec4\u1ebe\u1ed2\u0129\u00ed\u1ecb\u00f2"  # 0xD0
    "\u1ed4\u1ecf\u00f5\u00f3\u1ecd\u1ed3\u1ed5\u1ed7\u1ed1\u1ed9\u1edd\u1edf\u1ee1\u1edb\u1ee3\u00f9"  # 0xE0
    "\u1ed6\u1ee7\u0169\u00fa\u1ee5\u1eeb\u1eed\u1eef\u1ee9\u1ef1\u1ef3\u1ef7\u1ef9\u00fd\u1ef5\u1ed0"  # 0xF0
)
_TCVN3_LOW = {0x01: "\u00da", 0x02: "\u1ee4", 0x04: "\u1eea", 0x05: "\u1eec", 0x06: "\u1eee",
              0x11: "\u1ee8", 0x12: "\u1ef0", 0x13: "\u1ef2", 0x14: "\u1ef6", 0x15: "\u1ef8",
              0x16: "\u00dd", 0x17: "\u1ef4"}

# Byte value (as a Latin-1 code point) -> Unicode, for str.translate.
_TCVN3_DECODE: dict[int, str] = {0x80 + i: ch for i, ch in enumerate(_TCVN3_HIGH)}
_TCVN3_DECODE.update(_TCVN3_LOW)
_TCVN3_ENCODE: dict[int, str] = {
    ord(ch): chr(byte) for byte, ch in _TCVN3_DECODE.items()
    if byte >= 0x80 and not 0xB0 <= byte <= 0xB4  # lone combining marks: NFC text has none
}
# Capitals that VN1 keeps among the control bytes are written as their lower-case letter.
_TCVN3_ENCODE.update({ord(ch): _TCVN3_ENCODE[ord(ch.lower())] for ch in _TCVN3_LOW.values()})


def tcvn3_decode(raw: bytes | str) -> str:
    """TCVN3 bytes (or the same bytes read as Latin-1 code points) -> NFC Unicode."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    return unicodedata.normalize("NFC", text.translate(_TCVN3_DECODE))


def tcvn3_encode(text: str, errors: str = "replace") -> bytes:
    """Unicode -> TCVN3 bytes. Characters TCVN3 lacks become "?" (errors="strict": ValueError)."""
    return tcvn3_encode_as_latin1(text, errors).encode("latin-1")


def tcvn3_encode_as_latin1(text: str, errors: str = "replace") -> str:
    """The TCVN3 bytes of TEXT as Latin-1 code points: what GDAL writes byte for byte into a
    .dbf opened with ENCODING=ISO-8859-1."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        o = ord(ch)
        if o < 0x80:
            out.append(ch)
            continue
        enc = _TCVN3_ENCODE.get(o)
        if enc is None:
            if errors == "strict":
                raise ValueError(f"{ch!r} (U+{o:04X}) has no TCVN3 code")
            enc = "?"
        out.append(enc)
    return "".join(out)


# --- VNI-Windows ---------------------------------------------------------------------------
_TONES = {"acute": "\u0301", "grave": "\u0300", "hook": "\u0309", "tilde": "\u0303",
          "dot": "\u0323"}
# VNI's mark characters (lower case; upper-case text uses their capitals).
_VNI_TONE = {"acute": "ù", "grave": "ø", "hook": "û", "tilde": "õ", "dot": "ï"}
_VNI_CIRC = {None: "â", "acute": "á", "grave": "à", "hook": "å", "tilde": "ã", "dot": "ä"}
_VNI_BREVE = {None: "ê", "acute": "é", "grave": "è", "hook": "ú", "tilde": "ü", "dot": "ë"}
_VNI_I = {"acute": "í", "grave": "ì", "hook": "æ", "tilde": "ó", "dot": "ò"}


def _compose(base: str, *marks: str) -> str:
    return unicodedata.normalize("NFC", base + "".join(marks))


def _vni_table() -> dict[str, str]:
    """VNI sequence -> Unicode letter, lower and upper case."""
    table: dict[str, str] = {}
    for tone, mark in [(None, ""), *_TONES.items()]:
        for base in "aeou":
            if tone:
                table[base + _VNI_TONE[tone]] = _compose(base, mark)
        for base in "aeo":  # circumflex
            table[base + _VNI_CIRC[tone]] = _compose(base, "\u0302", mark)
        table["a" + _VNI_BREVE[tone]] = _compose("a", "\u0306", mark)
        # ơ and ư are single bytes (ô, ö in Windows-1252) followed by a tone character.
        table["ô" + (_VNI_TONE[tone] if tone else "")] = _compose("o", "\u031b", mark)
        table["ö" + (_VNI_TONE[tone] if tone else "")] = _compose("u", "\u031b", mark)
        if tone:
            table[_VNI_I[tone]] = _compose("i", mark)
            if tone != "dot":
                table["y" + _VNI_TONE[tone]] = _compose("y", mark)
    table["î"] = "\u1ef5"  # ỵ
    table["ñ"] = "đ"
    upper = {k.upper(): v.upper() for k, v in table.items()}
    return {**table, **upper}


_VNI = _vni_table()
_VNI_RE = re.compile("|".join(re.escape(k) for k in sorted(_VNI, key=len, reverse=True)))


def vni_decode(raw: bytes | str) -> str:
    """VNI-Windows bytes (or their Windows-1252 / Latin-1 reading) -> NFC Unicode."""
    text = raw.decode("cp1252", errors="replace") if isinstance(raw, bytes) else raw
    return unicodedata.normalize("NFC", _VNI_RE.sub(lambda m: _VNI[m.group(0)], text))


# --- detection ------------------------------------------------------------------------------
ENCODINGS = ("utf-8", "tcvn3", "vni", "cp1258", "latin-1")
LEGACY = ("tcvn3", "vni", "cp1258")

_TONE_MARKS = frozenset(_TONES.values())
_SYLLABLE = re.compile(
    r"(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdđfghjklmnpqrstvwxz])?"
    r"[aăâeêioôơuưy]{1,3}"
    r"(ch|ng|nh|[cmnpt])?"
)
_WORD_SPLIT = re.compile(r"[\s,.;:!?()\[\]{}\"'/\\\-_+*=&#%0-9]+")


def _valid_syllable(word: str) -> bool:
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = sum(1 for c in decomposed if c in _TONE_MARKS)
    if tones > 1:
        return False
    bare = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONE_MARKS))
    return _SYLLABLE.fullmatch(bare) is not None


def syllable_score(texts: Iterable[str]) -> tuple[float, int]:
    """(share of non-ASCII words that are Vietnamese syllables, number of such words)."""
    good = total = 0
    for text in texts:
        for word in _WORD_SPLIT.split(text):
            if not word or word.isascii():
                continue
            total += 1
            good += _valid_syllable(word)
    return (good / total if total else 1.0), total


def raw_bytes(text: str) -> bytes | None:
    """The bytes behind a string that was read with a single-byte encoding (Latin-1 first, as
    GDAL and our readers do; Windows-1252 for text that went through a Windows program)."""
    for enc in ("latin-1", "cp1252"):
        try:
            return text.encode(enc)
        except UnicodeEncodeError:
            continue
    return None


def decode(raw: bytes, encoding: str) -> str:
    """RAW decoded as ENCODING (one of ENCODINGS); invalid bytes become U+FFFD."""
    if encoding == "tcvn3":
        return tcvn3_decode(raw)
    if encoding == "vni":
        return vni_decode(raw)
    return unicodedata.normalize("NFC", raw.decode(encoding, errors="replace"))


def reinterpret(text: str, encoding: str) -> str:
    """TEXT, which holds legacy bytes as Latin-1/1252 code points, decoded as ENCODING.
    Text that cannot hold such bytes (it has characters beyond Windows-1252) is real Unicode
    and is returned unchanged."""
    raw = raw_bytes(text)
    return text if raw is None else decode(raw, encoding)


@dataclass
class Detection:
    """What the text of a file is. `encoding` None: plain Unicode (or ASCII), nothing to do."""

    encoding: str | None
    certain: bool
    score: float = 1.0
    words: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    example: str | None = None
    converted: str | None = None

    @property
    def legacy(self) -> bool:
        return self.encoding in LEGACY

    def describe(self) -> str:
        name = {"tcvn3": "TCVN3 (.VnTime)", "vni": "VNI-Windows", "cp1258": "Windows-1258"}.get(
            self.encoding or "", self.encoding or "Unicode")
        if self.example and self.converted:
            return f"{name}: {self.example!r} reads as {self.converted!r}"
        return name


# Certain: this share of words valid, at least this many words, this far ahead of the rest.
CERTAIN_SCORE = 0.85
CERTAIN_WORDS = 5
CERTAIN_MARGIN = 0.25
# Below certainty but still this Vietnamese-looking: refuse to guess and ask the user.
SUSPECT_SCORE = 0.5


def detect(texts: Iterable[str], raw: bool = False) -> Detection:
    """Decide how to read TEXTS (a sample of one file's string values).

    raw=True: the strings are bytes read as Latin-1 (a .dbf read without recoding), so UTF-8 is
    a candidate like the others. raw=False: the strings are already Unicode (GeoPackage,
    GeoJSON, CSV read as UTF-8): they are kept unless a legacy reading is clearly better.
    """
    sample = [t for t in texts if t and not t.isascii()]
    if not sample:
        return Detection(None, True)
    if raw:
        blobs = [t.encode("latin-1", errors="replace") for t in sample]
        try:
            utf8 = [b.decode("utf-8") for b in blobs]
        except UnicodeDecodeError:
            utf8 = None
        if utf8 is not None:  # random legacy bytes are almost never valid UTF-8
            return Detection("utf-8", True)
        baseline_name, baseline = "latin-1", sample
    else:
        baseline_name, baseline = None, sample
    base_score, words = syllable_score(baseline)
    scores = {baseline_name or "unicode": base_score}
    best: tuple[float, str | None, list[str]] = (base_score, baseline_name, baseline)
    for enc in LEGACY:
        converted = [reinterpret(t, enc) for t in sample]
        score, _ = syllable_score(converted)
        scores[enc] = score
        if score > best[0]:
            best = (score, enc, converted)
    score, chosen, converted = best
    if chosen is None or chosen == baseline_name and not raw:
        return Detection(None, True, base_score, words, scores)
    runner_up = max((s for k, s in scores.items() if k != chosen), default=0.0)
    example = next((a for a, b in zip(sample, converted, strict=True) if a != b), None)
    conv = converted[sample.index(example)] if example is not None else None
    certain = score >= CERTAIN_SCORE and words >= CERTAIN_WORDS and score - runner_up >= CERTAIN_MARGIN
    if chosen == "latin-1":  # nothing Vietnamese about it: bytes as declared
        return Detection("latin-1", base_score < SUSPECT_SCORE, base_score, words, scores)
    return Detection(chosen, certain, score, words, scores, example, conv)


def suspicious(d: Detection) -> bool:
    """A legacy Vietnamese encoding is likely but not certain: ask rather than guess."""
    return d.legacy and not d.certain and d.score >= SUSPECT_SCORE
