// Rail layer of the review viewer (rail projects, rail-two-stage-anomaly.txt Fig. 6): the rail
// mask the model found, tinted, and the anomalous patches as boxes with their scores. The mask
// is drawn in image coordinates under the viewer's one zoom/pan transform (like the heatmap);
// boxes are mapped to screen pixels with the same transform so their lines stay crisp.
// No HTTP and no DOM beyond the canvases it is handed.

import * as vt from "../view_transform.js";

export const RAIL_TINT = [0, 200, 255];
export const BOX_COLOUR = "#ff3030";

/** RGBA (Uint8ClampedArray) of a rail mask's levels (0 / 255): tinted where the rail is, clear elsewhere. */
export function railMaskRgba(levels, tint = RAIL_TINT, alpha = 140) {
  const out = new Uint8ClampedArray(levels.length * 4);
  for (let i = 0; i < levels.length; i++) {
    if (levels[i] > 127) {
      out[4 * i] = tint[0];
      out[4 * i + 1] = tint[1];
      out[4 * i + 2] = tint[2];
      out[4 * i + 3] = alpha;
    }
  }
  return out;
}

/** Screen rectangles [x, y, w, h] and labels of boxes ({x, y, width, height, score} in image pixels). */
export function boxesOnScreen(boxes, transform) {
  return (boxes || []).map((b) => {
    const [x0, y0] = vt.toScreen(transform, b.x, b.y);
    const [x1, y1] = vt.toScreen(transform, b.x + b.width, b.y + b.height);
    return { rect: [x0, y0, x1 - x0, y1 - y0], label: Number.isFinite(b.score) ? b.score.toFixed(2) : "" };
  });
}

/** Draws the boxes on a context set up in screen pixels. */
export function drawBoxes(ctx, boxes, transform) {
  ctx.save();
  ctx.lineWidth = 2;
  ctx.strokeStyle = BOX_COLOUR;
  ctx.fillStyle = BOX_COLOUR;
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "bottom";
  for (const { rect, label } of boxesOnScreen(boxes, transform)) {
    ctx.strokeRect(...rect);
    if (label) ctx.fillText(label, rect[0], rect[1] - 1);
  }
  ctx.restore();
}
