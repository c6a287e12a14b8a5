#!/usr/bin/env bash
# Re-creates web/static/vendor/ from pinned npm packages, so that the OGC API HTML pages
# (api/ogc_templates/) and our map client work on a closed network with no CDN.
#
#   scripts/vendor_assets.sh            # fetch the pinned tarballs with `npm pack`, copy the dist files
#
# Needs node/npm and access to the npm registry (only when re-vendoring; the result is committed).
# Every tarball is checked against the sha512 integrity pinned below before anything is copied.
# Only the minified dist files the templates use are kept, plus each package's licence; source maps
# and their `sourceMappingURL` comments are dropped (they would only produce 404s in devtools).
#
# Local patches (also recorded in web/static/vendor/VERSIONS.md):
#   - redoc: the "API docs by Redocly" sidebar logo is loaded from a CDN
#     (https://cdn.redoc.ly/redoc/logo-mini.svg); it is replaced by an inline (data:) SVG.
#   - leaflet.vectorgrid ships no LICENSE file; its licence text (README "Legalese") is written out.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/web/static/vendor"

# name  version  sha512 integrity (from `npm view NAME@VERSION dist.integrity`)
PACKAGES=(
    "leaflet                 1.9.4   sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="
    "leaflet.markercluster   1.5.3   sha512-vPTw/Bndq7eQHjLBVlWpnGeLa3t+3zGiuM7fJwCkiMFq+nmRuG3RI3f7f4N4TDX7T4NpbAXpR2+NTRSEGfCSeA=="
    "leaflet.vectorgrid      1.3.0   sha512-kWmj1pKM+MVdo/7Mg5zsB3YrGZvo/uIuiANV9MvWUFOG+Y2xAJzrteDhoIcCgTjHSSRJ36xdeGdIQVhuWjnCZw=="
    "leaflet.heat            0.2.0   sha512-Cd5PbAA/rX3X3XKxfDoUGi9qp78FyhWYurFg3nsfhntcM/MCNK08pRkf4iEenO1KNqwVPKCmkyktjW3UD+h9bQ=="
    "bootstrap               5.3.9   sha512-20cU0rcfw8WdxtVbmfU+xT2EjvVTw9Ror/h1Qvd7DXCujRg8OO9mdBCsmTHdJFf3BuadmBNJtgIuUXsBqSkk/w=="
    "swagger-ui-dist         5.35.0  sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=="
    "redoc                   2.5.4   sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ=="
    "uplot                   1.6.32  sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="
)

say() { printf '\033[1;34m[vendor]\033[0m %s\n' "$*"; }
die() { printf 'vendor_assets: %s\n' "$*" >&2; exit 1; }

command -v npm >/dev/null 2>&1 || die "npm is required (apt-get install nodejs npm)"
command -v openssl >/dev/null 2>&1 || die "openssl is required"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- fetch + verify + unpack ------------------------------------------------------------------
declare -A SRC VERSION
for line in "${PACKAGES[@]}"; do
    read -r name version integrity <<<"$line"
    say "npm pack $name@$version"
    (cd "$WORK" && npm pack "$name@$version" --silent --loglevel=error >/dev/null)
    tgz="$WORK/$name-$version.tgz"
    [ -f "$tgz" ] || die "npm pack did not produce $tgz"
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    [ "$got" = "$integrity" ] || die "$name@$version: integrity mismatch ($got)"
    mkdir -p "$WORK/x/$name"
    tar -xzf "$tgz" -C "$WORK/x/$name"
    SRC[$name]="$WORK/x/$name/package"
    VERSION[$name]="$version"
done

# copy FILE(relative to package) into DEST/PKG/TARGET(relative), dropping source-map comments
put() {
    local pkg=$1 file=$2 target=${3:-$2}
    local out="$DEST/$pkg/$target"
    mkdir -p "$(dirname "$out")"
    case "$file" in
        *.js|*.css)
            sed -E -e '/^[[:space:]]*\/[/*][#@] sourceMappingURL=[^ ]*( \*\/)?[[:space:]]*$/d' \
                -e 's#/[/*][#@] sourceMappingURL=[^ *]+( \*/)?$##' \
                "${SRC[$pkg]}/$file" >"$out" ;;
        *)  cp "${SRC[$pkg]}/$file" "$out" ;;
    esac
    chmod 0644 "$out"
}

rm -rf "$DEST"
mkdir -p "$DEST"

# --- leaflet ----------------------------------------------------------------------------------
put leaflet dist/leaflet.js leaflet.js
put leaflet dist/leaflet.css leaflet.css
for img in layers.png layers-2x.png marker-icon.png marker-icon-2x.png marker-shadow.png; do
    put leaflet "dist/images/$img" "images/$img"
done
put leaflet LICENSE

# --- leaflet.markercluster --------------------------------------------------------------------
put leaflet.markercluster dist/leaflet.markercluster.js leaflet.markercluster.js
put leaflet.markercluster dist/MarkerCluster.css MarkerCluster.css
put leaflet.markercluster dist/MarkerCluster.Default.css MarkerCluster.Default.css
put leaflet.markercluster MIT-LICENCE.txt LICENSE

# --- leaflet.vectorgrid (bundled build: includes geojson-vt, pbf, topojson, vector-tile) ------
put leaflet.vectorgrid dist/Leaflet.VectorGrid.bundled.min.js Leaflet.VectorGrid.bundled.min.js
{
    echo "Leaflet.VectorGrid ${VERSION[leaflet.vectorgrid]} -- licence text copied from the package README (\"Legalese\")."
    echo
    sed -n '/^## Legalese/,$p' "${SRC[leaflet.vectorgrid]}/README.md" | sed '1d'
    echo
    echo "The bundled build (Leaflet.VectorGrid.bundled.min.js) also contains:"
    sed -n '/^\* \[geojson-vt\]/,/^\* \[vector-tile\]/p' "${SRC[leaflet.vectorgrid]}/README.md"
} >"$DEST/leaflet.vectorgrid/LICENSE"
grep -q "BEER-WARE" "$DEST/leaflet.vectorgrid/LICENSE" || die "leaflet.vectorgrid: licence text not found"

# --- leaflet.heat (for the map client) --------------------------------------------------------
put leaflet.heat dist/leaflet-heat.js leaflet-heat.js
put leaflet.heat LICENSE

# --- bootstrap --------------------------------------------------------------------------------
put bootstrap dist/css/bootstrap.min.css css/bootstrap.min.css
put bootstrap dist/js/bootstrap.bundle.min.js js/bootstrap.bundle.min.js
put bootstrap LICENSE

# --- swagger-ui-dist --------------------------------------------------------------------------
for f in swagger-ui.css swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt \
         swagger-ui-standalone-preset.js swagger-ui-standalone-preset.js.LICENSE.txt \
         favicon-16x16.png favicon-32x32.png LICENSE NOTICE; do
    put swagger-ui-dist "$f"
done

# --- redoc (standalone bundle) ----------------------------------------------------------------
put redoc bundles/redoc.standalone.js redoc.standalone.js
put redoc bundles/redoc.standalone.js.LICENSE.txt redoc.standalone.js.LICENSE.txt
put redoc LICENSE
REDOC_LOGO='https://cdn.redoc.ly/redoc/logo-mini.svg'
REDOC_LOGO_LOCAL="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"
grep -qF "$REDOC_LOGO" "$DEST/redoc/redoc.standalone.js" || die "redoc: logo URL to patch not found"
python3 - "$DEST/redoc/redoc.standalone.js" "$REDOC_LOGO" "$REDOC_LOGO_LOCAL" <<'EOF'
import sys
path, old, new = sys.argv[1:4]
text = open(path, encoding="utf-8").read()
open(path, "w", encoding="utf-8").write(text.replace(old, new))
EOF

# --- uplot (the dashboard's charts and the map's sensor time series) -------------------------
put uplot dist/uPlot.iife.min.js uPlot.iife.min.js
put uplot dist/uPlot.min.css uPlot.min.css
put uplot LICENSE

# --- VERSIONS.md ------------------------------------------------------------------------------
{
    echo "# Vendored front-end assets"
    echo
    echo "Generated by \`scripts/vendor_assets.sh\` from the npm registry (do not edit by hand;"
    echo "change the pinned versions in the script and re-run it). Served at \`/ogc/static/vendor/\`."
    echo
    echo "| package@version | files |"
    echo "| --- | --- |"
    for line in "${PACKAGES[@]}"; do
        read -r name version _ <<<"$line"
        files=$(cd "$DEST/$name" && find . -type f | sed 's#^\./##' | sort | paste -sd ' ' | sed 's/ /, /g')
        echo "| $name@$version | $files |"
    done
    echo
    echo "Local changes to upstream files:"
    echo
    echo "- all: \`sourceMappingURL\` comments removed (source maps are not vendored)."
    echo "- redoc: sidebar logo URL \`$REDOC_LOGO\` replaced by an inline 1x1 SVG \`data:\` URI"
    echo "  (otherwise every ReDoc page would try to load it from the internet)."
    echo "- leaflet.vectorgrid: the package has no LICENSE file; \`LICENSE\` is its README's licence section."
    echo
    echo "Not vendored: d3, c3, covutils, covjson-reader, leaflet-coverage (used only by pygeoapi's"
    echo "EDR CoverageJSON viewer, which the GeoIOC templates replace with a link to the JSON)."
} >"$DEST/VERSIONS.md"

say "done: $(du -sh "$DEST" | cut -f1) in $DEST"
