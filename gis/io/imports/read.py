"""Reading an import file into Arrow tables: Shapefile (a zip, or a .shp with its parts),
GeoPackage, GeoJSON, FlatGeobuf and CSV (a WKT column, or longitude/latitude columns).

Files are read with pyogrio straight into Arrow (no per-row Python objects), the geometry as
WKB. Text that may be in a legacy Vietnamese encoding is kept undecoded (one Latin-1 code point
per byte) so that gis.io.imports.detect can decide what it is. Every way a file can be broken
(damaged zip, missing .shx/.dbf, unparsable .prj, no geometry, an ambiguous GeoPackage) ends
in an ImportFileError naming the file and what to do, never in a GDAL traceback.
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyogrio
from pyproj import CRS
from pyproj.exceptions import CRSError

from gis.io.imports.errors import ImportFileError, without_paths
from layers.model import Layer


@dataclass
class Source:
    """One table read from the file (a zip may hold several shapefiles)."""

    name: str
    table: pa.Table  # attributes, and the geometry as WKB in column "geometry"
    crs_text: str | None
    crs_origin: str
    raw_text: bool  # strings hold single-byte legacy text as Latin-1 code points
    declared_encoding: str | None = None


def _sibling(shp: Path, ext: str) -> Path | None:
    """SHP's companion file with extension EXT, in any case (zips from Windows say .DBF)."""
    for cand in shp.parent.iterdir():
        if cand.stem == shp.stem and cand.suffix.lower() == ext:
            return cand
    return None


def _gdal_error(name: str, e: Exception) -> ImportFileError:
    """GDAL's first line, without its stack of context: enough to act on, no paths of ours
    (GDAL quotes the temporary copy it was given: that becomes the file's own name)."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ImportFileError(f"cannot read {name}: {without_paths(msg, name)}", "import_cannot_read",
                           file=name)


def _read_shapefile(shp: Path, display: str, work: Path) -> Source:
    """A Shapefile with its text undecoded (raw_text): its .cpg is a claim that legacy
    Vietnamese files often get wrong, so the detection step decides."""
    for ext in (".shx", ".dbf"):
        if _sibling(shp, ext) is None:
            what = "index" if ext == ".shx" else "attribute table"
            raise ImportFileError(f"{display}: the Shapefile has no {ext} ({what}); add "
                                  f"{shp.stem}{ext} next to {shp.name} (in the zip)",
                                  "import_companion", file=display, ext=ext,
                                  name=f"{shp.stem}{ext}", shp=shp.name)
    prj = _sibling(shp, ".prj")
    cpg = _sibling(shp, ".cpg")
    declared = cpg.read_text(errors="replace").strip() if cpg else None
    prj_text = prj.read_text(errors="replace") if prj else None
    if prj_text is not None and not _parses(prj_text):
        # GDAL refuses to open a Shapefile whose .prj it cannot parse: read a copy without it
        # (sourcecrs then reports the unknown CRS, or --crs replaces it).
        copy = work / f"noprj-{len(list(work.iterdir()))}"
        copy.mkdir()
        for part in shp.parent.iterdir():
            if part.stem == shp.stem and part.suffix.lower() in (".shp", ".shx", ".dbf", ".cpg"):
                shutil.copy(part, copy / part.name)
        shp = copy / shp.name
    try:
        # Latin-1: every byte of the .dbf comes through as one code point, whatever the .cpg
        # claims; encodings.detect then decides what the text really is.
        _, table = pyogrio.read_arrow(str(shp), encoding="ISO-8859-1")
    except Exception as e:  # pyogrio raises several GDAL error types; all mean "unreadable"
        raise _gdal_error(display, e) from None
    return Source(display, _geometry_named(table), prj_text,
                  f"{shp.stem}.prj" if prj else "no .prj", True, declared)


def _parses(crs_text: str) -> bool:
    """Whether PROJ understands a .prj (GDAL will not open a Shapefile whose .prj it cannot)."""
    try:
        CRS.from_user_input(crs_text)
    except CRSError:
        return False
    return True


def _geometry_named(table: pa.Table) -> pa.Table:
    """TABLE with its WKB column named "geometry", whatever the driver called it."""
    names = table.column_names
    for cand in ("wkb_geometry", "geometry", "geom"):
        if cand in names:
            i = names.index(cand)
            if pa.types.is_binary(table.schema.types[i]) or pa.types.is_large_binary(table.schema.types[i]):
                return table.rename_columns([*names[:i], "geometry", *names[i + 1:]])
    raise ImportFileError("the file has no geometry", "import_no_geometry")


def _read_gdal(path: Path, display: str, layer: str | None, **open_options: str) -> Source:
    """Any format GDAL reads as Unicode (GeoPackage, GeoJSON, FlatGeobuf, CSV)."""
    try:
        meta, table = pyogrio.read_arrow(str(path), layer=layer, **open_options)
    except Exception as e:
        raise _gdal_error(display, e) from None
    if meta.get("geometry_type") in (None, "None") and "wkb_geometry" not in table.column_names:
        raise ImportFileError(f"{display}: no geometry (expected a WKT column named WKT, geometry "
                              "or geom, or longitude/latitude columns)", "import_csv_geometry",
                              file=display)
    return Source(display, _geometry_named(table), meta.get("crs"), "file", False)


def _choose_gpkg_layer(path: Path, wanted: str | None, target: Layer, display: str) -> str:
    """The GeoPackage layer to read: the one asked for, the only spatial one, or the one named
    like the target layer; otherwise the caller must choose (a guess could import the wrong
    table)."""
    try:
        layers = [(str(n), str(g)) for n, g in pyogrio.list_layers(str(path))]
    except Exception as e:
        raise _gdal_error(display, e) from None
    spatial = [n for n, g in layers if g not in ("None", "")]
    if wanted:
        if wanted not in [n for n, _ in layers]:
            raise ImportFileError(f"{display} has no layer {wanted!r}; layers: "
                                  f"{', '.join(n for n, _ in layers)}", "import_no_layer",
                                  file=display, wanted=repr(wanted),
                                  layers=", ".join(n for n, _ in layers))
        return wanted
    if len(spatial) == 1:
        return spatial[0]
    for n in spatial:
        if n in (target.id, target.table):
            return n
    raise ImportFileError(f"{display} has {len(spatial)} spatial layers ({', '.join(spatial)}); "
                          "choose one with --source-layer", "import_many_layers", file=display,
                          n=len(spatial), layers=", ".join(spatial))


def _read_csv(path: Path, display: str) -> Source:
    """A CSV with a WKT column or longitude/latitude columns, all values read as text (the
    validation converts them to the catalogue's types, with Vietnamese formats)."""
    raw = path.read_bytes()
    legacy = False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: hand GDAL a UTF-8 copy holding each byte as one Latin-1 code point, and
        # let encodings.detect decide what the bytes are.
        legacy = True
        path = path.with_name(f"{path.stem}.utf8{path.suffix}")
        path.write_text(raw.decode("latin-1"), encoding="utf-8")
    src = _read_gdal(path, display, None, GEOM_POSSIBLE_NAMES="wkt,geometry,geom,the_geom",
                     X_POSSIBLE_NAMES="lon,lng,long,longitude,x,kinh_do,kinhdo",
                     Y_POSSIBLE_NAMES="lat,latitude,y,vi_do,vido",
                     KEEP_GEOM_COLUMNS="NO", AUTODETECT_TYPE="NO", EMPTY_STRING_AS_NULL="YES")
    src.raw_text = legacy
    return src


def read_sources(path: Path, display: str, target: Layer, work: Path, source_layer: str | None = None
                 ) -> tuple[str, list[Source]]:
    """(format label, tables) of an uploaded or local file.

    DISPLAY names the file in messages (an upload's own name, not our temporary path); WORK is
    a scratch directory the caller removes; SOURCE_LAYER picks a GeoPackage's layer."""
    suffix = path.suffix.lower()
    if suffix == ".zip" or zipfile.is_zipfile(path) and suffix not in (".gpkg", ".xlsx"):
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
                if bad is not None:
                    raise ImportFileError(f"{display}: the zip is damaged ({bad} fails its checksum)",
                                          "import_zip_damaged", file=display, bad=bad)
                z.extractall(work / "unzipped")
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise ImportFileError(f"{display}: not a readable zip file (damaged or truncated?): "
                                  f"{without_paths(str(e), display, path)}", "import_zip_unreadable",
                                  file=display) from None
        root = work / "unzipped"
        files = sorted(p for p in root.rglob("*") if p.is_file() and "__MACOSX" not in p.parts)
        shps = [p for p in files if p.suffix.lower() == ".shp"]
        if shps:
            return "Shapefile (zip)", [_read_shapefile(s, f"{display}:{s.relative_to(root)}", work)
                                       for s in shps]
        others = [p for p in files if p.suffix.lower() in (".gpkg", ".geojson", ".json", ".csv", ".fgb")]
        if len(others) == 1:
            fmt, sources = read_sources(others[0], f"{display}:{others[0].name}", target, work,
                                           source_layer)
            return f"{fmt} (zip)", sources
        dangling = [p.name for p in files if p.suffix.lower() in (".dbf", ".shx", ".prj")]
        if dangling:
            raise ImportFileError(f"{display}: the zip has {', '.join(dangling)} but no .shp file",
                                  "import_zip_no_shp", file=display, files=", ".join(dangling))
        raise ImportFileError(f"{display}: the zip holds no Shapefile, GeoPackage, GeoJSON or CSV",
                              "import_zip_nothing", file=display)
    if suffix == ".shp":
        return "Shapefile", [_read_shapefile(path, display, work)]
    if suffix in (".dbf", ".shx", ".prj", ".cpg"):
        raise ImportFileError(f"{display}: give the .shp (with its .shx, .dbf and .prj beside it) "
                              "or a zip of them", "import_give_shp", file=display)
    if suffix == ".gpkg":
        layer = _choose_gpkg_layer(path, source_layer, target, display)
        return "GeoPackage", [_read_gdal(path, display, layer)]
    if suffix in (".geojson", ".json"):
        return "GeoJSON", [_read_gdal(path, display, None)]
    if suffix == ".fgb":
        return "FlatGeobuf", [_read_gdal(path, display, None)]
    if suffix in (".csv", ".txt"):
        return "CSV", [_read_csv(path, display)]
    raise ImportFileError(f"{display}: unsupported file type {suffix or '(none)'}; use a Shapefile "
                          "(zip), GeoPackage, GeoJSON, FlatGeobuf or CSV", "import_file_type",
                          file=display, suffix=suffix or "–")

