"""Parcel inspection for land-management staff: search, the parcel file (area check, zoning
conflicts, neighbours, incidents, cameras, history), cadastral extracts and edits.

The functions here take a psycopg connection and a layers.access.Principal and never decide
access by role names themselves: fields come from layers.access.readable_fields, other layers'
sections from can_read/row_filter. HTTP lives in api/routes/parcels.py.
"""
