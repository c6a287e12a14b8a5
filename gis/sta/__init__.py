"""OGC SensorThings API v1.1 (issue 16) over the sensor streams of migration 0020.

- odata.py: the query options ($filter, $orderby, $top, $skip, $count, $select, $expand) parsed
  into a syntax tree, with 400s naming the option and the position;
- model.py: the entity sets over GeoIOC's tables, their navigation and who sees which rows;
- queries.py: requests compiled to SQL that builds the entities' JSON in PostgreSQL;
- service.py: resource paths, reads, paging, counts, the service root;
- write.py: Observations created by POST and by data arrays, through the ingest's write path.

The HTTP side is api/routes/sta.py (/sta/v1.1).
"""
