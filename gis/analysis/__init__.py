"""Spatial analysis in PostGIS: aggregates the map and dashboards ask for (heatmaps, clusters,
counts with trends, cameras covering a place) and the search gazetteer.

Everything here takes the caller's row restriction (layers.access.row_filter) as an argument, so
an aggregate can never count a row its caller could not read one by one.
"""
