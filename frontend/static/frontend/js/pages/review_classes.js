// The review page's class-map layer for road-scene models: the predicted class map
// (GET /api/predictions/{id}/class-map.png, one class index per pixel) coloured by the
// project's label classes, drawn as its own translucent layer under the anomaly heatmap
// with the viewer's one zoom/pan. The threshold slider keeps working on the anomaly map.
// Hooked into review.js with `const classLayer = reviewClassLayer(...)` and
// `classLayer.show(item)`; for predictions without a class map it hides itself.

import { api } from "../api.js";
import { h } from "../dom.js";
import { canvasFromRgba, decodeLevels } from "../canvas/viewer.js";
import { classCounts, classLut, colouriseClasses, voidIndexOf } from "../class_map.js";

export function reviewClassLayer({ viewer, project, stage }) {
  let classes = null;
  let lut = null;
  let shown = null;
  const cache = new Map(); // class map url -> Promise<{levels, width, height}>
  const toggle = h("input", { type: "checkbox", id: "show-class-map", checked: true,
    onchange: () => viewer.setClassLayer(undefined, { visible: toggle.checked }) });
  const opacity = h("input", { type: "range", id: "class-map-opacity", min: 0, max: 1, step: 0.05, value: 0.45,
    oninput: () => viewer.setClassLayer(undefined, { opacity: +opacity.value }) });
  const legend = h("ul.class-legend", { id: "class-legend", style: "list-style:none;padding:0;margin:4px 0" });
  const section = h("section", { id: "class-map-controls", hidden: true }, h("h2", {}, "Predicted classes"),
    h("label", { for: "show-class-map" }, toggle, "Show class map ", h("kbd", {}, "C")),
    h("label.block", { for: "class-map-opacity" }, "Opacity", opacity), legend);

  async function ensureClasses() {
    if (!classes) {
      classes = await api.labelClasses(project.id);
      lut = classLut(classes, voidIndexOf(classes));
    }
  }

  function drawLegend(levels) {
    const counts = classCounts(levels);
    const total = levels.length || 1;
    legend.replaceChildren(...classes.filter((c) => counts[c.index]).map((c) =>
      h("li", { "data-class-index": c.index },
        h("span", { style: `display:inline-block;width:12px;height:12px;margin-right:6px;background:${c.color}` }),
        `${c.name} ${(100 * counts[c.index] / total).toFixed(1)}%`)));
  }

  return {
    element: section,
    /** Shows `item`'s class map (a queue item with `classMapUrl`), or hides the layer without one. */
    async show(item) {
      shown = item;
      if (!item.classMapUrl) {
        section.hidden = true;
        viewer.setClassLayer(null);
        delete stage.dataset.classMap;
        return;
      }
      section.hidden = false;
      try {
        await ensureClasses();
        if (!cache.has(item.classMapUrl)) {
          cache.set(item.classMapUrl, fetch(item.classMapUrl, { credentials: "same-origin" })
            .then((r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); return r.blob(); }).then(decodeLevels));
          if (cache.size > 8) cache.delete(cache.keys().next().value);
        }
        const data = await cache.get(item.classMapUrl);
        if (shown !== item) return;
        const rgba = colouriseClasses(data.levels, lut);
        viewer.setClassLayer(canvasFromRgba(rgba, data.width, data.height), { visible: toggle.checked });
        drawLegend(data.levels);
        stage.dataset.classMap = "shown";
      } catch (e) {
        cache.delete(item.classMapUrl);
        legend.replaceChildren(h("li.muted", {}, `Could not load the class map: ${e.message}`));
      }
    },
    toggle() {
      toggle.checked = !toggle.checked;
      viewer.setClassLayer(undefined, { visible: toggle.checked });
    },
  };
}
