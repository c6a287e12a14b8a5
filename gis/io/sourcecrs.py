"""Which CRS an imported file is in, and the VN-2000 "220 m trap".

A VN-2000 coordinate is only placed right when the datum shift to WGS 84 (EPSG transformation
6960) is applied. A .prj written by older software from a hand-made proj string has no EPSG
code and, ESRI WKT having no TOWGS84, no shift either: PROJ then falls back on a "ballpark"
transformation and the data land about 220 m off, silently. Old software also labels VN-2000
TM-3 data as datum "WGS 84" (VN-2000 uses the WGS 84 ellipsoid), with the same effect. We
refuse such a CRS, name the problem and the EPSG code the parameters point to, and let the user
confirm with --crs (an explicit --crs always wins).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from pyproj import CRS
from pyproj.exceptions import CRSError
from pyproj.transformer import TransformerGroup

# VN-2000 geographic, UTM and TM-3 zones (see the shared reference vietnam-geodata.md).
VN2000_CODES = (4756, 3405, 3406, 5896, 5897, 5898, 5899, *range(9205, 9219))
_VN_DATUM = re.compile(r"vietnam|vn[-_ ]?2000|towgs84_-191", re.IGNORECASE)
_WGS84_DATUM = re.compile(r"world geodetic system 1984|wgs[-_ ]?(19)?84", re.IGNORECASE)


class SourceCRSError(ValueError):
    """The file's CRS is missing, unreadable or a trap: nothing is imported."""


@dataclass
class SourceCRS:
    crs: CRS
    label: str  # "EPSG:9209" or the CRS name
    origin: str  # ".prj", "file", "--crs", "file name", "assumed"
    warnings: list[str] = field(default_factory=list)

    @property
    def is_wgs84(self) -> bool:
        datum = self.crs.datum
        return (self.crs.is_geographic and datum is not None
                and _WGS84_DATUM.search(datum.name or "") is not None)


def _tm_params(crs: CRS) -> tuple[float, float, float, float] | None:
    """(central meridian, scale, false easting, false northing) of a Transverse Mercator CRS."""
    op = crs.coordinate_operation
    if op is None or "transverse mercator" not in (op.method_name or "").lower():
        return None
    p = {q.name.lower(): q.value for q in op.params}
    try:
        return (float(p["longitude of natural origin"]), float(p["scale factor at natural origin"]),
                float(p["false easting"]), float(p["false northing"]))
    except KeyError:
        return None


@lru_cache
def _vn2000_params() -> dict[int, tuple[float, float, float, float] | None]:
    return {code: _tm_params(CRS.from_epsg(code)) for code in VN2000_CODES}


def likely_vn2000(crs: CRS) -> list[int]:
    """VN-2000 EPSG codes whose projection parameters equal CRS's (4756 for geographic)."""
    if crs.is_geographic:
        return [4756]
    params = _tm_params(crs)
    if params is None:
        return []
    return [code for code, p in _vn2000_params().items()
            if p is not None and all(abs(a - b) < 1e-9 for a, b in zip(p, params, strict=True))]


def _best_transformation(crs: CRS) -> tuple[str, float]:
    group = TransformerGroup(crs, CRS.from_epsg(4326), always_xy=True)
    if not group.transformers:
        return "none", -1.0
    best = group.transformers[0]
    return best.description or "", float(best.accuracy if best.accuracy is not None else -1)


def _name(crs: CRS) -> str:
    code = crs.to_epsg(min_confidence=100)
    return f"EPSG:{code} ({crs.name})" if code else repr(crs.name)


def _codes(codes: list[int]) -> str:
    return " or ".join(f"EPSG:{c} ({CRS.from_epsg(c).name})" for c in codes)


def check(crs: CRS) -> None:
    """Raise SourceCRSError for a CRS that would place the data wrongly without saying so."""
    datum = crs.datum.name if crs.datum else ""
    description, accuracy = _best_transformation(crs)
    ballpark = accuracy < 0 and "ballpark" in description.lower()
    wgs84 = _WGS84_DATUM.search(datum or "") is not None and not _VN_DATUM.search(datum or "")
    candidates = likely_vn2000(crs)
    if ballpark and (_VN_DATUM.search(datum or "") or _VN_DATUM.search(crs.name or "")
                     or (candidates and not crs.is_geographic)):
        guess = _codes(candidates) if candidates else "the VN-2000 EPSG code of the data"
        params = _tm_params(crs)
        if params and abs(params[1] - 0.9996) < 1e-9 and crs.utm_zone:  # UTM: GPS data too
            guess += f" (or EPSG:{32600 + int(crs.utm_zone[:-1])} WGS 84 / UTM if it is GPS data)"
        raise SourceCRSError(
            f"the file's CRS {_name(crs)} is VN-2000 without the datum shift to WGS 84 (no EPSG "
            f"code, no TOWGS84 - typical of a .prj written by older software): the data would land "
            f"about 220 m off. It is most likely {guess}; re-run with --crs "
            f"EPSG:{candidates[0] if candidates else 'NNNN'} to confirm")
    if wgs84 and not crs.is_geographic and candidates:
        params = _tm_params(crs)
        if params and abs(params[1] - 0.9999) < 1e-9:  # TM-3 (k 0.9999): no WGS 84 grid uses it
            raise SourceCRSError(
                f"the file's CRS {_name(crs)} is a VN-2000 TM-3 projection (central meridian "
                f"{params[0]:g}, scale 0.9999) labelled datum WGS 84: older software writes VN-2000 "
                f"this way, and read as WGS 84 the data would land about 220 m off. It is most "
                f"likely {_codes(candidates)}; re-run with --crs EPSG:{candidates[0]} (or with this "
                f"file's own definition if it really is WGS 84)")
    if ballpark or accuracy < 0 and not wgs84:
        raise SourceCRSError(
            f"the file's CRS {_name(crs)} has no known transformation to WGS 84 (only a "
            f"'ballpark' one, off by up to hundreds of metres); re-run with --crs EPSG:NNNN")


def parse_user_crs(text: str) -> CRS:
    try:
        return CRS.from_user_input(text.strip())
    except CRSError:
        raise SourceCRSError(f"--crs: {text!r} is not a CRS (use e.g. EPSG:9209)") from None


def resolve(file_crs: str | None, user_crs: str | None, origin: str = "file") -> SourceCRS:
    """The CRS to read the file's coordinates in: --crs when given (noted when it differs from
    the file's own), else the file's, checked for the 220 m trap."""
    if user_crs:
        crs = parse_user_crs(user_crs)
        out = SourceCRS(crs, _label(crs), "--crs")
        if file_crs:
            try:
                own = CRS.from_user_input(file_crs)
                if not own.equals(crs, ignore_axis_order=True):
                    out.warnings.append(f"the file says its CRS is {_name(own)}; used {out.label} as "
                                        "asked (--crs)")
            except CRSError:
                pass
        return out
    if not file_crs:
        raise SourceCRSError(f"the file has no CRS ({origin}); re-run with --crs (e.g. EPSG:9209 "
                             "for VN-2000 TM-3 105-30, EPSG:4326 for GPS longitude/latitude)")
    try:
        crs = CRS.from_user_input(file_crs)
    except CRSError:
        raise SourceCRSError(f"unknown CRS in the file ({origin}): {file_crs[:120]!r}; re-run with "
                             "--crs EPSG:NNNN") from None
    check(crs)
    return SourceCRS(crs, _label(crs), origin)


def _label(crs: CRS) -> str:
    code = crs.to_epsg(min_confidence=100)
    if code:
        return f"EPSG:{code}"
    auth = crs.to_authority(min_confidence=100)
    return ":".join(auth) if auth else crs.name
