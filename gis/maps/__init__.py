"""The map client's data: reference data, identify, cameras, sensors, labels."""
