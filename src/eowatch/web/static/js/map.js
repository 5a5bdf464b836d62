// The Leaflet map: offline country outlines (world-atlas TopoJSON, shipped with the app)
// or a configured online XYZ base map, a tile layer that sends the API key, and drawing
// tools for areas of interest. Leaflet, Leaflet.draw and topojson-client are classic
// scripts loaded by the page (globals L and topojson).

import { request } from "./api.js";

const L = window.L;

/** Tiles fetched with the key (an <img src> cannot send headers) and shown from object URLs. */
const AuthTileLayer = L.TileLayer.extend({
  createTile(coords, done) {
    const tile = document.createElement("img");
    tile.alt = "";
    tile.setAttribute("role", "presentation");
    const controller = new AbortController();
    tile._abort = controller;
    request(this.getTileUrl(coords), { signal: controller.signal })
      .then((response) => response.blob())
      .then((blob) => {
        tile.onload = () => {
          URL.revokeObjectURL(tile.src);
          done(null, tile);
        };
        tile.src = URL.createObjectURL(blob);
      })
      .catch((err) => {
        if (err.name !== "AbortError") {
          this.fire("tilefailure", { coords, error: err });
          done(err, tile);
        }
      });
    return tile;
  },
  _removeTile(key) {
    const tile = this._tiles[key];
    if (tile && tile.el._abort) tile.el._abort.abort();
    L.TileLayer.prototype._removeTile.call(this, key);
  },
});

export function authTileLayer(url, options) {
  return new AuthTileLayer(url, options);
}

/** Rings that cross the antimeridian (Russia's Chukotka, Fiji) jump from +180 to -180
 * degrees; drawn as they are, Leaflet joins the jump with an edge across the whole world
 * (horizontal stripes). Each ring is made continuous instead (a longitude moved by 360
 * degrees when it is more than 180 from the previous one), so it runs past the edge of
 * the map as worldCopyJump expects. */
export function unwrapAntimeridian(geojson) {
  const unwrap = (ring) => {
    let shift = 0;
    return ring.map(([lon, lat], i) => {
      if (i > 0) {
        const previous = ring[i - 1][0];
        if (lon - previous > 180) shift -= 360;
        else if (previous - lon > 180) shift += 360;
      }
      return [lon + shift, lat];
    });
  };
  for (const feature of geojson.features) {
    const g = feature.geometry;
    if (!g) continue;
    if (g.type === "Polygon") g.coordinates = g.coordinates.map(unwrap);
    else if (g.type === "MultiPolygon") g.coordinates = g.coordinates.map((p) => p.map(unwrap));
  }
  return geojson;
}

export async function createMap(element, config) {
  const map = L.map(element, { zoomControl: true, worldCopyJump: true, preferCanvas: false });
  map.setView([30, 10], 2);
  if (config.basemap && config.basemap.url) {
    L.tileLayer(config.basemap.url, { maxZoom: 19, attribution: config.basemap.attribution }).addTo(map);
  } else {
    const response = await fetch(config.outlines);
    const world = await response.json();
    const countries = unwrapAntimeridian(window.topojson.feature(world, world.objects.countries));
    map.createPane("outlines").style.zIndex = 150;
    L.geoJSON(countries, {
      pane: "outlines",
      interactive: false,
      style: { color: "#6b7a8f", weight: 0.8, fillColor: "#e9eef3", fillOpacity: 1 },
    }).addTo(map);
    map.attributionControl.addAttribution("Outlines: Natural Earth via world-atlas");
    element.classList.add("offline-basemap");
  }
  L.control.scale({ imperial: false }).addTo(map);
  return map;
}

/** Rectangle/polygon drawing; `onShape(geometry)` gets the GeoJSON geometry of the last shape. */
export function addDrawing(map, onShape) {
  const drawn = new L.FeatureGroup().addTo(map);
  const control = new L.Control.Draw({
    position: "topleft",
    draw: {
      polyline: false,
      circle: false,
      circlemarker: false,
      marker: false,
      rectangle: { shapeOptions: { color: "#d9480f" } },
      polygon: { allowIntersection: false, showArea: false, shapeOptions: { color: "#d9480f" } },
    },
    edit: { featureGroup: drawn, edit: false, remove: true },
  });
  map.addControl(control);
  map.on(L.Draw.Event.CREATED, (event) => {
    drawn.clearLayers();
    drawn.addLayer(event.layer);
    onShape(event.layer.toGeoJSON().geometry);
  });
  map.on(L.Draw.Event.DELETED, () => onShape(null));
  return {
    show(geometry) {
      drawn.clearLayers();
      if (!geometry) return;
      const layer = L.geoJSON(geometry, { style: { color: "#d9480f", weight: 2, fillOpacity: 0.1 } });
      layer.eachLayer((l) => drawn.addLayer(l));
      map.fitBounds(layer.getBounds(), { maxZoom: 14 });
    },
    clear() {
      drawn.clearLayers();
    },
  };
}

/** [[south, west], [north, east]] of a STAC bbox. */
export function bboxBounds(bbox) {
  const [west, south, east, north] = bbox.length === 6 ? [bbox[0], bbox[1], bbox[3], bbox[4]] : bbox;
  return L.latLngBounds([south, west], [north, east]);
}
