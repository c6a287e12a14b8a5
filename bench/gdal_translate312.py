"""ogr2ogr's own logic from the GDAL that pyogrio bundles (3.12), called through ctypes.

    .venv/bin/python bench/gdal_translate312.py DST.gpkg 'OAPIF:http://127.0.0.1:PORT/ogc' parcels \
        [-oo PAGE_SIZE=10000] [-- extra ogr2ogr options]

Why: Debian's gdal-bin is 3.6.2, whose OAPIF driver parses every page twice and does not fetch
ahead (bench/README.md, "Where the time of the OAPIF export goes"). pyogrio's wheel carries a
recent libgdal with the OAPIF and GPKG drivers but no command-line tools, and pyogrio itself
reads into Arrow/pandas rather than writing through GDAL's translate loop. `GDALVectorTranslate`
is the function the `ogr2ogr` program wraps (apps/ogr2ogr_bin.cpp parses the command line into
GDALVectorTranslateOptions and calls it), so timing it is timing ogr2ogr of that GDAL version.

Prints one JSON line: the GDAL version, the seconds spent in GDALVectorTranslate (open, copy,
close included) and the feature count of the written layer, read back from the file.
`-oo` is an open option of the source (ogr2ogr_bin handles it, not the translate options), so it
goes to GDALOpenEx here as it does there.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

# Found, not imported: importing pyogrio would install its own GDAL error handler (messages
# turned into Python warnings, a callback into Python on every one).
_SPEC = importlib.util.find_spec("pyogrio")
if _SPEC is None or _SPEC.origin is None:
    raise SystemExit("pyogrio is not installed in this Python")
PKG = Path(_SPEC.origin).parent
GDAL_OF_VECTOR = 0x04
GDAL_OF_UPDATE = 0x01
GDAL_OF_VERBOSE_ERROR = 0x40


def libgdal() -> ctypes.CDLL:
    """The bundled libgdal with the package's GDAL_DATA and PROJ data (set before loading: PROJ
    reads PROJ_DATA when its context starts), function signatures declared (pointers are 64-bit:
    the ctypes default int would cut them)."""
    os.environ.setdefault("GDAL_DATA", str(PKG / "gdal_data"))
    os.environ.setdefault("PROJ_DATA", str(PKG / "proj_data"))
    os.environ.setdefault("PROJ_LIB", str(PKG / "proj_data"))
    libs = sorted((PKG.parent / "pyogrio.libs").glob("libgdal-*.so*"))
    if not libs:
        raise SystemExit(f"no libgdal-*.so in {PKG.parent / 'pyogrio.libs'}")
    lib = ctypes.CDLL(str(libs[0]))
    p, s, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    sigs: dict[str, tuple[object, list[object]]] = {
        "GDALAllRegister": (None, []),
        "GDALVersionInfo": (s, [s]),
        "CPLSetConfigOption": (None, [s, s]),
        "CPLGetLastErrorMsg": (s, []),
        "GDALOpenEx": (p, [s, ctypes.c_uint, p, p, p]),
        "GDALClose": (i, [p]),
        "GDALVectorTranslateOptionsNew": (p, [p, p]),
        "GDALVectorTranslateOptionsFree": (None, [p]),
        "GDALVectorTranslate": (p, [s, p, i, ctypes.POINTER(p), p, ctypes.POINTER(i)]),
        "GDALDatasetGetLayerByName": (p, [p, s]),
        "OGR_L_GetFeatureCount": (ctypes.c_int64, [p, i]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    lib.GDALAllRegister()
    return lib


def strlist(items: list[str]) -> ctypes.Array[ctypes.c_char_p]:
    """A NULL-terminated char** as GDAL's CSL functions expect."""
    arr = (ctypes.c_char_p * (len(items) + 1))()
    arr[:-1] = [x.encode() for x in items]
    arr[-1] = None
    return arr


def fail(lib: ctypes.CDLL, what: str) -> SystemExit:
    msg = lib.CPLGetLastErrorMsg()
    return SystemExit(f"{what}: {msg.decode() if msg else 'no GDAL error message'}")


def translate(dst: str, src: str, layer: str, open_options: list[str], argv: list[str]) -> dict[str, object]:
    lib = libgdal()
    t0 = time.perf_counter()
    src_ds = lib.GDALOpenEx(src.encode(), GDAL_OF_VECTOR | GDAL_OF_VERBOSE_ERROR, None,
                            ctypes.cast(strlist(open_options), ctypes.c_void_p) if open_options else None,
                            None)
    if not src_ds:
        raise fail(lib, f"GDALOpenEx({src})")
    args = strlist(["-f", "GPKG", *argv, layer])
    opts = lib.GDALVectorTranslateOptionsNew(ctypes.cast(args, ctypes.c_void_p), None)
    if not opts:
        raise fail(lib, "GDALVectorTranslateOptionsNew")
    usage = ctypes.c_int(0)
    srcs = (ctypes.c_void_p * 1)(src_ds)
    out = lib.GDALVectorTranslate(dst.encode(), None, 1, srcs, opts, ctypes.byref(usage))
    lib.GDALVectorTranslateOptionsFree(opts)
    if not out:
        raise fail(lib, f"GDALVectorTranslate (usage error {usage.value})")
    if lib.GDALClose(out) != 0:  # CE_None; the GeoPackage is committed here
        raise fail(lib, "GDALClose(destination)")
    lib.GDALClose(src_ds)
    seconds = time.perf_counter() - t0

    check = lib.GDALOpenEx(dst.encode(), GDAL_OF_VECTOR | GDAL_OF_VERBOSE_ERROR, None, None, None)
    if not check:
        raise fail(lib, f"GDALOpenEx({dst})")
    lyr = lib.GDALDatasetGetLayerByName(check, layer.encode())
    count = int(lib.OGR_L_GetFeatureCount(lyr, 1)) if lyr else -1
    lib.GDALClose(check)
    return {"gdal": lib.GDALVersionInfo(b"--version").decode(), "seconds": seconds, "count": count}


def main() -> None:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        argv, extra = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    if len(argv) < 3:
        raise SystemExit(__doc__)
    dst, src, layer, *rest = argv
    open_options = [rest[k + 1] for k in range(len(rest)) if rest[k] == "-oo"]
    print(json.dumps(translate(dst, src, layer, open_options, extra)))


if __name__ == "__main__":
    main()
