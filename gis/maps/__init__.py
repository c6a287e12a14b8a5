"""The map client's data: reference data, identify, cameras, sensors, labels, and the live map's
events read under each caller's access (live)."""
