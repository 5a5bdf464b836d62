// The before and after imagery of a result on the map, at full resolution, under the
// change layer: tiles of the result's before_visual / after_visual COGs
// (eowatch.products.visual). The after image is clipped to the right of a vertical
// divider that the swipe slider moves (keyboard: arrow keys on the slider), so the
// analyst sees both dates at the same place and zoom; the change layer stays on top.

import { authTileLayer } from "./map.js";

const L = window.L;
const PANES = { before: ["imagery-before", 200], after: ["imagery-after", 210] };

export class ImagerySwipe {
  /** `slider`: an <input type=range> 0-100, the divider's position across the map. */
  constructor(map, slider) {
    this.map = map;
    this.slider = slider;
    this.layers = [];
    for (const [name, z] of Object.values(PANES)) {
      if (!map.getPane(name)) map.createPane(name).style.zIndex = String(z);
    }
    this.divider = L.DomUtil.create("div", "swipe-divider", map.getContainer());
    this.divider.hidden = true;
    this.clip = () => this.update();
    slider.addEventListener("input", this.clip);
    map.on("move zoom resize", this.clip);
  }

  /** Show the imagery of `item` (tile URL templates from `tileUrl(item, asset)`), or
   * nothing when the item has no visual COGs; true when shown. */
  show(item, tileUrl, bounds) {
    this.clear();
    const assets = item.assets || {};
    if (!assets.before_visual || !assets.after_visual) return false;
    for (const [key, [pane]] of Object.entries(PANES)) {
      const layer = authTileLayer(tileUrl(item, `${key}_visual`), {
        pane, bounds, maxZoom: 19, className: `imagery-${key}`,
      });
      layer.addTo(this.map);
      this.layers.push(layer);
    }
    this.divider.hidden = false;
    this.slider.closest("label").hidden = false;
    this.update();
    return true;
  }

  /** The divider and the clip of the after pane at the slider's position. */
  update() {
    if (!this.layers.length) return;
    const size = this.map.getSize();
    const x = Math.round((size.x * Number(this.slider.value)) / 100);
    this.divider.style.left = `${x}px`;
    const nw = this.map.containerPointToLayerPoint([0, 0]);
    const se = this.map.containerPointToLayerPoint(size);
    const cut = this.map.containerPointToLayerPoint([x, 0]).x;
    this.map.getPane(PANES.after[0]).style.clip = `rect(${nw.y}px, ${se.x}px, ${se.y}px, ${cut}px)`;
  }

  clear() {
    for (const layer of this.layers) this.map.removeLayer(layer);
    this.layers = [];
    this.divider.hidden = true;
    this.map.getPane(PANES.after[0]).style.clip = "";
    this.slider.closest("label").hidden = true;
  }
}
