// Pure heatmap arithmetic on typed arrays (no DOM): colour maps, the mapping
// between anomaly scores and the 8-bit levels of a heatmap PNG, and the
// re-thresholded predicted region. Tested with `node --test`.
//
// The server stores a heatmap as an 8-bit PNG whose levels 0..255 map linearly
// onto [vmin, vmax] of the anomaly map; a threshold in score units therefore
// becomes a level, and "pixel is in the predicted region" is `level >= that`.

const STOPS = {
  // A few stops of each map; everything between is interpolated.
  jet: [[0, 0, 0, 131], [0.125, 0, 60, 170], [0.375, 5, 255, 255], [0.625, 255, 255, 0], [0.875, 250, 0, 0], [1, 128, 0, 0]],
  inferno: [[0, 0, 0, 4], [0.25, 87, 16, 110], [0.5, 188, 55, 84], [0.75, 249, 142, 9], [1, 252, 255, 164]],
  viridis: [[0, 68, 1, 84], [0.25, 59, 82, 139], [0.5, 33, 145, 140], [0.75, 94, 201, 98], [1, 253, 231, 37]],
  gray: [[0, 0, 0, 0], [1, 255, 255, 255]],
};

export const COLOUR_MAPS = Object.keys(STOPS);

/** 256 x RGB lookup table (Uint8Array of length 768) for a named colour map. */
export function colourLut(name) {
  const stops = STOPS[name];
  if (!stops) throw new Error(`unknown colour map "${name}"; known: ${COLOUR_MAPS.join(", ")}`);
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const v = i / 255;
    let k = 0;
    while (k < stops.length - 2 && v > stops[k + 1][0]) k++;
    const [p0, r0, g0, b0] = stops[k];
    const [p1, r1, g1, b1] = stops[k + 1];
    const f = p1 === p0 ? 0 : (v - p0) / (p1 - p0);
    lut[i * 3] = Math.round(r0 + (r1 - r0) * f);
    lut[i * 3 + 1] = Math.round(g0 + (g1 - g0) * f);
    lut[i * 3 + 2] = Math.round(b0 + (b1 - b0) * f);
  }
  return lut;
}

/** Heatmap level (0..255, fractional) of a score; clamps outside the range. */
export function scoreToLevel(score, vmin, vmax) {
  if (!(vmax > vmin)) return score >= vmax ? 0 : 256;
  const level = ((score - vmin) / (vmax - vmin)) * 255;
  return Math.max(0, Math.min(256, level));
}

/**
 * Levels of a heatmap from RGBA pixels as a browser decodes a grey PNG (R=G=B).
 * @param {Uint8ClampedArray} rgba length 4*N
 * @returns {Uint8Array} length N
 */
export function levelsFromRgba(rgba) {
  const n = rgba.length / 4;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rgba[i * 4];
  return out;
}

/** The default colour map: perceptually uniform, so equal score steps look equally different. */
export const DEFAULT_COLOUR_MAP = "viridis";

/**
 * Colourised overlay: RGBA where each pixel takes the colour map's colour at its
 * level. Alpha is proportional to the level, so the lowest scores leave the image
 * untinted and only high ones cover it; overall opacity is applied when the layer
 * is drawn, not here.
 */
export function colouriseInto(levels, lut, out) {
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    out[i * 4] = lut[l * 3];
    out[i * 4 + 1] = lut[l * 3 + 1];
    out[i * 4 + 2] = lut[l * 3 + 2];
    out[i * 4 + 3] = l;
  }
  return out;
}

/** Binary region (1 inside) where level >= the threshold's level. Returns its pixel count too. */
export function regionFromLevels(levels, thresholdLevel, out = new Uint8Array(levels.length)) {
  let count = 0;
  for (let i = 0; i < levels.length; i++) {
    const inside = levels[i] >= thresholdLevel ? 1 : 0;
    out[i] = inside;
    count += inside;
  }
  return { region: out, count };
}

/**
 * RGBA of the region's outline (pixels inside with a 4-neighbour outside) in `colour`
 * plus a faint fill, so the region stays readable over any heatmap. The image border
 * is not an outline: a region running off the image would otherwise look framed.
 */
export function regionOutlineInto(region, width, height, colour, out) {
  const [r, g, b] = colour;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      let a = 0;
      if (region[i]) {
        const edge =
          (x > 0 && !region[i - 1]) || (x < width - 1 && !region[i + 1]) ||
          (y > 0 && !region[i - width]) || (y < height - 1 && !region[i + width]);
        a = edge ? 255 : 40;
      }
      out[i * 4] = r;
      out[i * 4 + 1] = g;
      out[i * 4 + 2] = b;
      out[i * 4 + 3] = a;
    }
  }
  return out;
}
