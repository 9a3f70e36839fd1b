// Class-index maps (road scenes) in colour: pure helpers, tested in node.
// A class map is one byte per pixel, the label class index; the project's label
// classes give each index a colour. Void (and any index without a class) is left
// transparent, so the image shows through.

/** "#rrggbb" -> [r, g, b]. */
export function hexToRgb(hex) {
  const n = parseInt(String(hex).replace("#", ""), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** 256 x RGBA lookup from label classes [{index, color, name}]; `voidIndex` stays transparent. */
export function classLut(classes, voidIndex = 255) {
  const lut = new Uint8ClampedArray(256 * 4);
  for (const c of classes) {
    if (c.index === voidIndex || c.index < 0 || c.index > 255) continue;
    const [r, g, b] = hexToRgb(c.color);
    lut.set([r, g, b, 255], c.index * 4);
  }
  return lut;
}

/** The void index of a project's classes: the class called "void", else 255. */
export function voidIndexOf(classes) {
  const v = classes.find((c) => c.name.toLowerCase() === "void");
  return v ? v.index : 255;
}

/** RGBA pixels of a class map (`levels`: Uint8Array of class indices). */
export function colouriseClasses(levels, lut, out = new Uint8ClampedArray(levels.length * 4)) {
  for (let i = 0; i < levels.length; i++) {
    const o = levels[i] * 4;
    out[i * 4] = lut[o];
    out[i * 4 + 1] = lut[o + 1];
    out[i * 4 + 2] = lut[o + 2];
    out[i * 4 + 3] = lut[o + 3];
  }
  return out;
}

/** Pixels per class index present in `levels` ({index: count}), for the legend. */
export function classCounts(levels) {
  const counts = {};
  for (let i = 0; i < levels.length; i++) counts[levels[i]] = (counts[levels[i]] || 0) + 1;
  return counts;
}
