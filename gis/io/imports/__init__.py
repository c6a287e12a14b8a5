"""Imports into a catalogue layer from Shapefile (zip or .shp), GeoPackage, GeoJSON, FlatGeobuf
and CSV (a WKT column, or longitude/latitude columns).

What a land officer can count on (and why it is built so):

* All or nothing by default. Every row is checked before anything is written; a file with one
  bad row writes nothing and the report lists every rejected row with its number (1-based, in
  the order of the source file, header not counted) and the reason. `partial` writes the good
  rows and reports the others.
* Idempotent. Rows are matched on the layer's natural key (Layer.natural_key; parcels: commune,
  pre-2025 commune, sheet, parcel; cameras and sensors: code; administrative units: code and
  start of validity) and only rows that differ are updated, so importing the same file twice
  changes nothing (no new parcel versions, no history rows). Layers without a natural key
  (roads, land-use zones, tourism places, incidents) match on content: a row identical to a
  stored one (same values and geometry) is left alone, any other row is added - re-importing is
  still a no-op, but an edited row comes in as a new feature (there is no key to say which one
  it replaces).
* Legal versions. A parcels file may carry several rows of one parcel, each dated by when it
  took legal effect (HIEULUC, legal_valid_from) and naming its decision (SOQD, decision_no):
  they are the parcel's versions, matched across the 2025 merger by the commune its sheets are
  numbered in, and applied oldest first so that the parcel's history holds them in legal order
  (versions.py). Versions already recorded are left alone; an older one that is not is refused.
* Never a 500 for a bad file: damaged zips, missing .shx/.dbf, unknown or trap CRS (the 220 m
  VN-2000 .prj, gis.io.sourcecrs), legacy TCVN3/VNI text (gis.io.encodings: converted when
  certain or when asked, otherwise refused with a hint), wrong geometry types, invalid
  geometries (repaired with ST_MakeValid only when asked), attribute values that do not fit the
  catalogue's types or coded values, and database constraints (checked per row by bisection when
  the bulk write fails) all end in an ImportFileError or a report with rejections.
* Fast: files are read as Arrow (pyogrio), reprojected with pyproj and checked with shapely in
  whole arrays, staged with one binary COPY (pgpq) and written with one UPDATE and one INSERT;
  a bulk load rebuilds the layer's secondary indexes instead of maintaining them row by row
  (write.set_indexes_aside).
* Column names: the catalogue's full names or its short Shapefile names (both accepted, any
  case), so an exported file re-imports as it is. `id`/`fid` columns are ignored (identifiers are
  the database's), and so are system fields (a parcel's version and update time).
* Rights: the caller may only write fields they may read and rows they may see (an operator
  cannot plant security events in the incidents layer); who may import into which layer is
  Layer.import_roles in the catalogue. Every import, committed or not, is in the audit log.

One module per job (pipeline.py runs them in order):

* read.py - the file into Arrow tables (zips, Shapefile parts, GeoPackage layers, CSV columns);
* detect.py - the text encoding and the source CRS of each table;
* validate.py - rights, columns to fields, values to the catalogue's types and coded values,
  required values, repeated keys; geometry.py - geometry type, emptiness, reprojection, extent
  and validity;
* repair.py - what happens to invalid geometries (refused, unchanged, or ST_MakeValid);
* table.py - the layer's table as the database declares it (types, required columns);
* write.py - staging, matching, the bulk write, bulk-load indexes, constraint bisection;
* versions.py - history imports: dated versions of one feature, matched, checked against the
  stored history and written in rounds, oldest first;
* report.py - the ImportReport and the audit summary; errors.py - the two refusals.

The public API is what this package exports: import_file, ImportOptions, ImportReport,
Rejection, ImportFileError, ImportNotAllowed (a missing layer is layers.errors.LayerNotFound).
"""

from gis.io.imports.errors import ImportFileError, ImportNotAllowed
from gis.io.imports.pipeline import ImportOptions, Progress, import_file
from gis.io.imports.report import ImportReport, Rejection

__all__ = ["ImportFileError", "ImportNotAllowed", "ImportOptions", "ImportReport", "Progress", "Rejection",
           "import_file"]
