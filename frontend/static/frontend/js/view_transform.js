// Zoom and pan as one pure value: screen = image * scale + offset. Every layer of a
// viewer (image, heatmap overlay, polygons) is drawn with the same transform, so the
// overlay can never drift from the image.

export const MIN_SCALE = 0.05;
export const MAX_SCALE = 40;

export function identity() {
  return { scale: 1, offsetX: 0, offsetY: 0 };
}

/** The transform that fits an image of (w, h) centred in a viewport of (vw, vh). */
export function fit(w, h, vw, vh, margin = 0.98) {
  const scale = Math.min(vw / w, vh / h) * margin;
  return { scale, offsetX: (vw - w * scale) / 2, offsetY: (vh - h * scale) / 2 };
}

export function toImage(t, sx, sy) {
  return [(sx - t.offsetX) / t.scale, (sy - t.offsetY) / t.scale];
}

export function toScreen(t, ix, iy) {
  return [ix * t.scale + t.offsetX, iy * t.scale + t.offsetY];
}

/** Zoom by `factor` keeping the image point under screen (sx, sy) fixed. */
export function zoomAt(t, sx, sy, factor) {
  const scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, t.scale * factor));
  const [ix, iy] = toImage(t, sx, sy);
  return { scale, offsetX: sx - ix * scale, offsetY: sy - iy * scale };
}

export function panBy(t, dx, dy) {
  return { scale: t.scale, offsetX: t.offsetX + dx, offsetY: t.offsetY + dy };
}
