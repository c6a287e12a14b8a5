"""TCVN3 (TCVN 5712:1993, the .VnTime fonts) against byte sequences fixed by the standard, not
against the project's own table: each phrase below is written out as the bytes a .VnTime document
holds (read as Latin-1 they are the well-known mojibake "Céng hoµ x· héi chñ nghÜa ViÖt Nam").
gis/io/encodings.py must turn the bytes into the text and the text into the bytes.
"""

from __future__ import annotations

import pytest

from gis.io.encodings import decode, tcvn3_decode, tcvn3_encode

# (Unicode text, its TCVN3 bytes), byte by byte from TCVN 5712:1993 (VN3: lower-case letters with
# tone marks, and the capitals Ă A1, Â A2, Ê A3, Ô A4, Ơ A5, Ư A6, Đ A7, which carry no tone mark).
STANDARD = [
    ("Việt Nam", b"Vi\xd6t Nam"),                                    # ệ D6
    ("Hà Nội", b"H\xb5 N\xe9i"),                                     # à B5, ộ E9
    ("Xã Hoà Bình", b"X\xb7 Ho\xb5 B\xd7nh"),                        # ã B7, ì D7
    ("Đà Nẵng", b"\xa7\xb5 N\xbdng"),                                # Đ A7, ẵ BD
    ("Thành phố Hồ Chí Minh", b"Th\xb5nh ph\xe8 H\xe5 Ch\xdd Minh"),  # ố E8, ồ E5, í DD
    ("Cộng hoà xã hội chủ nghĩa Việt Nam",
     b"C\xe9ng ho\xb5 x\xb7 h\xe9i ch\xf1 ngh\xdca Vi\xd6t Nam"),     # ủ F1, ĩ DC
    ("Độc lập - Tự do - Hạnh phúc",
     b"\xa7\xe9c l\xcbp - T\xf9 do - H\xb9nh ph\xf3c"),               # ậ CB, ự F9, ạ B9, ú F3
    ("đường", b"\xae\xad\xeang"),                                     # đ AE, ư AD, ờ EA
    ("Nguyễn Văn Tỉnh", b"Nguy\xd4n V\xa8n T\xd8nh"),                # ễ D4, ă A8, ỉ D8
    ("Bắc Ninh, Quế Võ, Thuận Thành", b"B\xbec Ninh, Qu\xd5 V\xe2, Thu\xcbn Th\xb5nh"),  # ắ BE, ế D5, õ E2
    ("ĐÊ Ơ Ô Â Ă Ư", b"\xa7\xa3 \xa5 \xa4 \xa2 \xa1 \xa6"),          # the capitals
    ("ơ ô â ă ê", b"\xac \xab \xa9 \xa8 \xaa"),                       # and their small letters
]


@pytest.mark.parametrize("text,raw", STANDARD, ids=[t for t, _ in STANDARD])
def test_the_standards_bytes_decode_to_the_text(text: str, raw: bytes) -> None:
    assert tcvn3_decode(raw) == text
    assert decode(raw, "tcvn3") == text
    # as GDAL hands a .dbf without .cpg over: the bytes as Latin-1 code points
    assert tcvn3_decode(raw.decode("latin-1")) == text


@pytest.mark.parametrize("text,raw", STANDARD, ids=[t for t, _ in STANDARD])
def test_the_text_encodes_to_the_standards_bytes(text: str, raw: bytes) -> None:
    assert tcvn3_encode(text) == raw
    assert tcvn3_encode(text, errors="strict") == raw


@pytest.mark.parametrize("text,raw", [
    ("ƯỚC TÍNH", b"\xa6\x9bC T\x90NH"),  # Ớ 9B, Í 90
    ("HỒ", b"H\xdb"),                      # Ồ DB
    ("ÀẢÃÁẠ", b"\x80\x81\x82\x83\x84"),
])
def test_capitals_with_tone_marks_use_the_vn1_bytes(text: str, raw: bytes) -> None:
    """VN1 (the standard's full table, glibc iconv's TCVN5712-1) places the capitals with tone
    marks from 0x80; VN3 software shows them as small letters."""
    assert tcvn3_encode(text) == raw
    assert tcvn3_decode(raw) == text


def test_what_tcvn3_lacks_is_replaced_or_refused() -> None:
    assert tcvn3_encode("Hà Nội €") == b"H\xb5 N\xe9i ?"
    with pytest.raises(ValueError, match="U\\+20AC"):
        tcvn3_encode("€", errors="strict")
