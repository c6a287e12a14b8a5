"""The FastAPI application: OGC API (pygeoapi) under /ogc, our own routes under /api."""
