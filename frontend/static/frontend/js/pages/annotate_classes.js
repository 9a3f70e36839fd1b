// The annotate page's road-scene additions: a class picker (one coloured button per
// label class, keys 1-9 as the label select already has them) and the class map as a
// translucent layer: every polygon filled with its class colour, holes cut, later
// polygons over earlier ones (as the server renders the class-index mask), drawn on
// the viewer's "classes" layer under the same zoom/pan. No HTTP here.
// Hooked into annotate.js: `const roadClasses = annotateClassTools({viewer, select, size})`,
// `roadClasses.setClasses(classes)` when classes load, `roadClasses.update(state.polygons)`
// from refreshSide.

import { h } from "../dom.js";

export function annotateClassTools({ viewer, select, size }) {
  let classes = [];
  const picker = h("div.class-picker", { id: "class-picker", role: "group", "aria-label": "Label classes",
    style: "display:flex;flex-wrap:wrap;gap:4px;margin:6px 0" });
  const fillToggle = h("input", { type: "checkbox", id: "fill-by-class", checked: true,
    onchange: () => viewer.setClassLayer(undefined, { visible: fillToggle.checked }) });
  const opacity = h("input", { type: "range", id: "class-fill-opacity", min: 0, max: 1, step: 0.05, value: 0.45,
    oninput: () => viewer.setClassLayer(undefined, { opacity: +opacity.value }) });
  const element = h("section", { id: "class-tools" }, h("h2", {}, "Classes"), picker,
    h("label", { for: "fill-by-class" }, fillToggle, "Fill by class (class map)"),
    h("label.block", { for: "class-fill-opacity" }, "Class map opacity", opacity));
  const canvas = document.createElement("canvas");

  function syncPicker() {
    for (const b of picker.children) b.setAttribute("aria-pressed", String(b.dataset.classId === select.value));
  }
  select.addEventListener("change", syncPicker);

  return {
    element,
    setClasses(list) {
      classes = list;
      picker.replaceChildren(...list.map((c, i) => h("button", {
        type: "button", "data-class-id": c.id, "data-class-index": c.index, title: `${c.name} (index ${c.index})`,
        style: `border-left:14px solid ${c.color}`,
        onclick: () => { select.value = String(c.id); select.dispatchEvent(new Event("change")); },
      }, i < 9 ? `${i + 1} ${c.name}` : c.name)));
      syncPicker();
    },
    /** Redraws the class map from `polygons` ([{label_class, polygon: {outer, holes}}]). */
    update(polygons) {
      const [w, hgt] = size;
      canvas.width = w;
      canvas.height = hgt;
      const ctx = canvas.getContext("2d");
      ctx.clearRect(0, 0, w, hgt);
      const colour = new Map(classes.map((c) => [c.id, c.color]));
      for (const p of polygons) {
        const path = new Path2D();
        for (const ring of [p.polygon.outer, ...(p.polygon.holes || [])]) {
          ring.forEach(([x, y], k) => (k ? path.lineTo(x + 0.5, y + 0.5) : path.moveTo(x + 0.5, y + 0.5)));
          path.closePath();
        }
        // Holes show what lies below: cut them from this polygon only.
        const layer = document.createElement("canvas");
        layer.width = w;
        layer.height = hgt;
        const lctx = layer.getContext("2d");
        lctx.fillStyle = colour.get(p.label_class) || "#ff3b30";
        lctx.fill(path, "evenodd");
        ctx.drawImage(layer, 0, 0);
      }
      viewer.setClassLayer(canvas, { visible: fillToggle.checked, opacity: +opacity.value });
      syncPicker();
    },
  };
}
