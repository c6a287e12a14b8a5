/* GeoIOC command map: names written on the map, thinned out by priority.
 *
 * Candidates come from the gazetteer (commune names, centred on a point inside each unit) and,
 * from zoom 15 on, from point layers whose catalogue entry gives them a label priority (facility
 * and tourism names, beside their symbol). They are placed greedily, highest priority first: a
 * name goes where its box overlaps neither a name already placed nor a point symbol or cluster
 * on the map (it tries a few positions round its anchor), else it is left out for this view.
 * The result is recomputed whenever the view settles, so zooming in brings names back.
 * G.labelLayout keeps the last placement (placed and dropped names with their boxes) for the
 * tests, which check it against what the browser drew. */
(function (G) {
  "use strict";

  const POINT_LABELS_FROM_ZOOM = 15;
  const FONTS = { place: "600 11px system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', sans-serif",
                  point: "500 10.5px system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', sans-serif" };
  const HEIGHT = { place: 15, point: 14 };
  const PAD = 3; // the text's halo, and a little air

  let ctx2d = null;
  function width(text, kind) {
    if (!ctx2d) ctx2d = document.createElement("canvas").getContext("2d");
    ctx2d.font = FONTS[kind];
    return Math.ceil(ctx2d.measureText(text).width) + 2 * PAD;
  }

  const hits = (a, b) => a.x1 < b.x2 && b.x1 < a.x2 && a.y1 < b.y2 && b.y1 < a.y2;

  /** Boxes a name may take round its anchor P: centred (places, nudged if need be) or beside
   * its symbol of radius R (right, left, above, below). */
  function positions(c, p, w, h) {
    if (!c.r) {
      return [[0, 0], [0, -h], [0, h], [w / 2 + 4, 0], [-w / 2 - 4, 0]].map(([dx, dy]) =>
        ({ x1: p.x + dx - w / 2, y1: p.y + dy - h / 2, x2: p.x + dx + w / 2, y2: p.y + dy + h / 2 }));
    }
    const g = c.r + 2;
    return [
      { x1: p.x + g, y1: p.y - h / 2, x2: p.x + g + w, y2: p.y + h / 2 },
      { x1: p.x - g - w, y1: p.y - h / 2, x2: p.x - g, y2: p.y + h / 2 },
      { x1: p.x - w / 2, y1: p.y - g - h, x2: p.x + w / 2, y2: p.y - g },
      { x1: p.x - w / 2, y1: p.y + g, x2: p.x + w / 2, y2: p.y + g + h },
    ];
  }

  /** Place CANDIDATES ({text, latlng, priority, r, layer, kind}) on MAP avoiding OBSTACLES
   * (screen boxes of symbols): {placed, dropped}, each name with its box. */
  G.placeLabels = function (map, candidates, obstacles) {
    const size = map.getSize();
    const order = candidates.map((c, i) => [c, i])
      .sort((a, b) => b[0].priority - a[0].priority || a[1] - b[1]).map(([c]) => c);
    const placed = [];
    const dropped = [];
    for (const c of order) {
      const kind = c.r ? "point" : "place";
      const p = map.latLngToContainerPoint(c.latlng);
      const w = width(c.text, kind);
      const box = positions(c, p, w, HEIGHT[kind]).find((b) =>
        b.x1 >= 0 && b.y1 >= 0 && b.x2 <= size.x && b.y2 <= size.y &&
        !placed.some((q) => hits(b, q.box)) && !obstacles.some((o) => hits(b, o)));
      if (box) placed.push(Object.assign({}, c, { kind, box }));
      else dropped.push(Object.assign({}, c, { kind, tried: positions(c, p, w, HEIGHT[kind]) }));
    }
    return { placed, dropped, obstacles, size: { x: size.x, y: size.y } };
  };

  /** Lay the names out again for the current view; PLACES: the gazetteer's names (or null),
   * HANDLES: the layers (their labels() and symbols()), GROUP: the layer group drawn into,
   * COVERED: screen boxes of panels over the map. */
  G.relabel = function (map, places, handles, group, covered) {
    const zoom = map.getZoom();
    const candidates = [];
    if (places) {
      const view = map.getBounds();
      for (const l of places.labels) {
        const ll = L.latLng(l.lat, l.lon);
        if (view.contains(ll)) candidates.push({ text: l.name, latlng: ll, priority: places.priority, r: 0,
                                                 layer: places.layer, id: l.code });
      }
    }
    const obstacles = (covered || []).map((b) => Object.assign({ panel: true }, b));
    for (const h of Object.values(handles)) {
      if (h.symbols) obstacles.push(...h.symbols());
      if (h.labels && zoom >= POINT_LABELS_FROM_ZOOM) candidates.push(...h.labels());
    }
    const layout = G.placeLabels(map, candidates, obstacles);
    group.clearLayers();
    for (const l of layout.placed) {
      const ll = map.containerPointToLatLng([l.box.x1, l.box.y1]);
      group.addLayer(L.marker(ll, {
        pane: "gi-labels", interactive: false, keyboard: false,
        icon: L.divIcon({
          className: "gi-maplabel gi-maplabel-" + l.kind, iconSize: null, iconAnchor: [0, 0],
          html: `<span data-label-layer="${G.esc(l.layer)}" style="width:${Math.round(l.box.x2 - l.box.x1)}px">` +
                `${G.esc(l.text)}</span>`,
        }),
      }));
    }
    G.labelLayout = layout;
    return layout;
  };
})(window.GeoIOC = window.GeoIOC || {});
