"""Data exchange: exports (export.py), imports (the imports package, one module per step),
harvests from other OGC API - Features servers (harvest.py), legacy Vietnamese encodings
(encodings.py), source-CRS checks (sourcecrs.py), export jobs on the job queue (jobs.py). Every way out
applies layers.access; every way in is audited and all-or-nothing by default."""
