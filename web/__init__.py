"""The map client: the command map page (built with folium, web/map_page.py), its layer manifest
(web/manifest.py) and its static assets (web/static: our map JS/CSS and vendored libraries)."""
