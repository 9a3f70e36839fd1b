// Pure geometry in image pixel coordinates. No DOM, no canvas: tested with `node --test`.
// A point is [x, y]; a ring is an array of points (not closed: the last point
// does not repeat the first); a polygon is {outer: ring, holes: [ring, ...]}.

export function distance(a, b) {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

/** Closest point to `p` on segment a-b, with its parameter t in [0, 1] and distance. */
export function projectOnSegment(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  let t = len2 === 0 ? 0 : ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2;
  t = Math.max(0, Math.min(1, t));
  const point = [a[0] + t * dx, a[1] + t * dy];
  return { point, t, distance: distance(p, point) };
}

/** Signed area (shoelace); positive when the ring runs counter-clockwise in y-up axes. */
export function signedArea(ring) {
  let s = 0;
  for (let i = 0; i < ring.length; i++) {
    const [x1, y1] = ring[i];
    const [x2, y2] = ring[(i + 1) % ring.length];
    s += x1 * y2 - x2 * y1;
  }
  return s / 2;
}

export function ringArea(ring) {
  return Math.abs(signedArea(ring));
}

/** Area of the outer ring less its holes. */
export function polygonArea(polygon) {
  return (polygon.holes || []).reduce((a, h) => a - ringArea(h), ringArea(polygon.outer));
}

/** Even-odd ray casting; points exactly on an edge may fall either way. */
export function pointInRing(p, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > p[1]) !== (yj > p[1]) && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Inside the outer ring and outside every hole. */
export function pointInPolygon(p, polygon) {
  if (!pointInRing(p, polygon.outer)) return false;
  return !(polygon.holes || []).some((h) => pointInRing(p, h));
}

/** Rings of a polygon with a path naming each: [{ring, path: ['outer'] | ['holes', i]}]. */
export function ringsOf(polygon) {
  const rings = [{ ring: polygon.outer, path: ["outer"] }];
  (polygon.holes || []).forEach((h, i) => rings.push({ ring: h, path: ["holes", i] }));
  return rings;
}

/**
 * Nearest vertex within `radius` over a list of polygons.
 * Returns {polygon, ring: 'outer' | hole index, vertex, distance} or null.
 */
export function nearestVertex(polygons, p, radius) {
  let best = null;
  polygons.forEach((polygon, pi) => {
    ringsOf(polygon).forEach(({ ring, path }) => {
      ring.forEach((v, vi) => {
        const d = distance(p, v);
        if (d <= radius && (!best || d < best.distance)) {
          best = { polygon: pi, ring: path[0] === "outer" ? "outer" : path[1], vertex: vi, distance: d };
        }
      });
    });
  });
  return best;
}

/**
 * Nearest edge within `radius`: {polygon, ring, edge (index of its first vertex), point, distance} or null.
 * The returned point is where a vertex would be inserted.
 */
export function nearestEdge(polygons, p, radius) {
  let best = null;
  polygons.forEach((polygon, pi) => {
    ringsOf(polygon).forEach(({ ring, path }) => {
      for (let i = 0; i < ring.length; i++) {
        const pr = projectOnSegment(p, ring[i], ring[(i + 1) % ring.length]);
        if (pr.distance <= radius && (!best || pr.distance < best.distance)) {
          best = { polygon: pi, ring: path[0] === "outer" ? "outer" : path[1], edge: i, point: pr.point, distance: pr.distance };
        }
      }
    });
  });
  return best;
}

/** Index of the top-most polygon containing p (later polygons are drawn on top), or -1. */
export function polygonAt(polygons, p) {
  for (let i = polygons.length - 1; i >= 0; i--) if (pointInPolygon(p, polygons[i])) return i;
  return -1;
}

export function clampPoint(p, width, height) {
  return [Math.max(0, Math.min(width, p[0])), Math.max(0, Math.min(height, p[1]))];
}

/** Rounds to 0.1 px: enough for masks, keeps payloads small. */
export function roundPoint(p) {
  return [Math.round(p[0] * 10) / 10, Math.round(p[1] * 10) / 10];
}

/** True when two segments p1-p2 and q1-q2 cross at an interior point. */
export function segmentsCross(p1, p2, q1, q2) {
  const o = (a, b, c) => Math.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]));
  const d1 = o(q1, q2, p1);
  const d2 = o(q1, q2, p2);
  const d3 = o(p1, p2, q1);
  const d4 = o(p1, p2, q2);
  return d1 * d2 < 0 && d3 * d4 < 0;
}

/** A ring crosses itself when two non-adjacent edges cross (masks of such rings surprise users). */
export function ringSelfIntersects(ring) {
  const n = ring.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (j === i + 1 || (i === 0 && j === n - 1)) continue;
      if (segmentsCross(ring[i], ring[(i + 1) % n], ring[j], ring[(j + 1) % n])) return true;
    }
  }
  return false;
}

/** Pixels an 8-connected line from a to b passes through, less one endpoint. */
function ringBoundaryPixels(ring) {
  let n = 0;
  for (let i = 0; i < ring.length; i++) {
    const a = ring[i];
    const b = ring[(i + 1) % ring.length];
    n += Math.max(Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
  }
  return n;
}

/**
 * How many pixels the server's mask gives a polygon. The server counts a pixel when its
 * centre is inside or a ring's boundary passes through it (vertices are pixel centres),
 * so by Pick's theorem a ring covers about area + boundary / 2 + 1 pixels and a hole
 * removes only its interior, area - boundary / 2 + 1. The shoelace area alone reads far
 * too low for thin shapes (a one-pixel crack has almost no area but many pixels).
 */
export function polygonPixelArea(polygon) {
  const outer = ringArea(polygon.outer) + ringBoundaryPixels(polygon.outer) / 2 + 1;
  const holes = (polygon.holes || []).reduce((a, h) => a + Math.max(0, ringArea(h) - ringBoundaryPixels(h) / 2 + 1), 0);
  return Math.max(0, outer - holes);
}

/** Axis-aligned box [x0, y0, x1, y1] from two corners, in order. */
export function boxFromCorners(a, b) {
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
}

/**
 * Thins a stroke's points: keeps a point once it is at least `spacing` from the last kept one
 * (the server sweeps a disc between kept points, so nothing painted is lost), and always the last.
 */
export function thinStroke(points, spacing) {
  if (points.length <= 2) return points.slice();
  const out = [points[0]];
  for (let i = 1; i < points.length - 1; i++) if (distance(points[i], out[out.length - 1]) >= spacing) out.push(points[i]);
  out.push(points[points.length - 1]);
  return out;
}

/** Width and height of a preview box of at most `max` pixels on its longer side, at the image's aspect ratio. */
export function previewSize(width, height, max) {
  const s = max / Math.max(width, height, 1);
  return [Math.max(1, Math.round(width * s)), Math.max(1, Math.round(height * s))];
}
