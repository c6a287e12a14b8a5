"""Synthetic Vietnamese names: places, people, organisations, streets.

Names are built from common Sino-Vietnamese place syllables and family/given names, so that the
sample exercises what real data has (diacritics of every tone, "Đ/đ", NFC text, collisions of
accent-stripped forms) while naming no real commune or person on purpose.
"""

from __future__ import annotations

import unicodedata

import numpy as np
from numpy.typing import NDArray

# Syllables seen in northern place names; every tone mark and Đ appears.
PLACE_SYLLABLES = (
    "An", "Bình", "Bảo", "Cảnh", "Châu", "Chi", "Cao", "Đại", "Đào", "Đình", "Đông", "Đồng",
    "Đức", "Duệ", "Giang", "Hà", "Hạ", "Hán", "Hòa", "Hồ", "Hưng", "Hương", "Khê", "Khúc",
    "Kim", "Lạc", "Lai", "Lãng", "Lâm", "Liên", "Long", "Mạc", "Mão", "Minh", "Mỹ", "Ngàn",
    "Nghĩa", "Ngọc", "Nguyên", "Nhân", "Ninh", "Nội", "Phong", "Phú", "Phù", "Phúc", "Phượng",
    "Quang", "Quảng", "Quế", "Sơn", "Song", "Tam", "Tân", "Thái", "Thanh", "Thịnh", "Thọ",
    "Thượng", "Tiên", "Trang", "Trung", "Tương", "Vân", "Việt", "Vĩnh", "Võ", "Xuân", "Xuyên",
    "Yên", "Ẩm", "Đạo", "Điền", "Lũng", "Kỳ", "Hiếu", "Bồng", "Nguyệt", "Đoài",
)  # fmt: skip

FAMILY_NAMES = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Ngô", "Dương",
    "Đào", "Đinh", "Lý", "Hồ", "Trịnh", "Phan", "Nghiêm", "Chu", "Lưu",
)  # fmt: skip
# Rough shares of family names in the north (Nguyễn dominates everywhere).
FAMILY_WEIGHTS = (38, 11, 9, 7, 5, 5, 3, 3, 3, 3, 2, 2, 2, 1.5, 1.5, 1.5, 1, 1, 1, 1)
MIDDLE_MALE = ("Văn", "Đức", "Minh", "Quang", "Hữu", "Xuân", "Công", "Thành", "Tiến", "Mạnh")
MIDDLE_FEMALE = ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Minh", "Hồng", "Phương", "Kim")
GIVEN_MALE = (
    "An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hùng", "Huy", "Khánh", "Long", "Nam",
    "Phúc", "Quân", "Sơn", "Thắng", "Toàn", "Trung", "Tuấn", "Việt", "Vinh", "Đông", "Hiếu",
)  # fmt: skip
GIVEN_FEMALE = (
    "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hương", "Lan", "Linh",
    "Mai", "Ngân", "Nhung", "Oanh", "Phương", "Quyên", "Thảo", "Trang", "Tuyết", "Vân", "Yến",
)  # fmt: skip

# Street names of historical figures, as in any Vietnamese town.
STREET_NAMES = (
    "Lý Thái Tổ", "Lý Thường Kiệt", "Trần Hưng Đạo", "Ngô Gia Tự", "Nguyễn Văn Cừ",
    "Huyền Quang", "Kinh Dương Vương", "Lê Thái Tổ", "Nguyễn Trãi", "Hai Bà Trưng",
    "Lê Văn Thịnh", "Nguyễn Đăng Đạo", "Thiên Đức", "Ngọc Hân Công Chúa", "Lý Anh Tông",
    "Trần Lựu", "Nguyễn Cao", "Hồ Ngọc Lân", "Đấu Mã", "Bình Than", "Âu Cơ", "Lạc Long Quân",
    "Phù Đổng Thiên Vương", "Đỗ Trọng Vỹ", "Nguyễn Quyền", "Cao Lỗ Vương", "Lê Quang Đạo",
    "Nguyễn Gia Thiều", "Hàn Thuyên", "Vũ Kiệt",
)  # fmt: skip

COMPANY_WORDS = (
    "Hưng Thịnh", "Phú Long", "Đại Phát", "Thành Công", "Minh Khang", "Tân Tiến", "Kinh Bắc",
    "Việt Hàn", "Đông Á", "Sao Mai", "Hoàng Long", "An Phát", "Phúc Lộc", "Quang Minh",
)  # fmt: skip


def nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


class PlaceNamer:
    """Unique two-syllable place names ("Tân Hòa", "Đông Ngàn"), drawn without replacement."""

    def __init__(self, rng: np.random.Generator) -> None:
        n = len(PLACE_SYLLABLES)
        i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        ok = i != j
        pairs = np.column_stack([i[ok], j[ok]])
        self._pairs = pairs[rng.permutation(len(pairs))]
        self._next = 0
        self._used: set[str] = set()

    def take(self) -> str:
        while True:
            a, b = self._pairs[self._next]
            self._next += 1
            name = nfc(f"{PLACE_SYLLABLES[a]} {PLACE_SYLLABLES[b]}")
            if name not in self._used:
                self._used.add(name)
                return name

    def reserve(self, name: str) -> None:
        self._used.add(nfc(name))


def person_names(rng: np.random.Generator, n: int) -> tuple[NDArray[np.object_], NDArray]:
    """n full names ("Nguyễn Văn An") and whether each is male, vectorised."""
    fam = np.asarray(FAMILY_NAMES, dtype=object)
    w = np.asarray(FAMILY_WEIGHTS, dtype=float)
    male = rng.random(n) < 0.55
    f = fam[rng.choice(len(fam), size=n, p=w / w.sum())]
    mid = np.where(
        male,
        np.asarray(MIDDLE_MALE, dtype=object)[rng.integers(0, len(MIDDLE_MALE), n)],
        np.asarray(MIDDLE_FEMALE, dtype=object)[rng.integers(0, len(MIDDLE_FEMALE), n)],
    )
    giv = np.where(
        male,
        np.asarray(GIVEN_MALE, dtype=object)[rng.integers(0, len(GIVEN_MALE), n)],
        np.asarray(GIVEN_FEMALE, dtype=object)[rng.integers(0, len(GIVEN_FEMALE), n)],
    )
    # Object arrays in, object array out (asarray only tells the type checker so: no copy).
    return np.asarray(f + " " + mid + " " + giv, dtype=object), male


def company_names(rng: np.random.Generator, n: int) -> NDArray[np.object_]:
    kinds = np.asarray(
        ["Công ty TNHH ", "Công ty Cổ phần ", "Công ty TNHH Điện tử ", "Công ty CP Cơ khí "],
        dtype=object,
    )
    words = np.asarray(COMPANY_WORDS, dtype=object)
    return kinds[rng.integers(0, len(kinds), n)] + words[rng.integers(0, len(words), n)]
