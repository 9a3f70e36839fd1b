// Drawing of annotation polygons, the polygon being drawn and the mask preview.
// Pure drawing: takes the state and a transform, touches nothing else.
import { toScreen } from "../view_transform.js";

export const HANDLE = 5; // vertex handle radius in screen pixels

function ringPath(ctx, ring, t) {
  ring.forEach((p, i) => {
    const [x, y] = toScreen(t, p[0], p[1]);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.closePath();
}

function hexToRgba(hex, alpha) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
  const [r, g, b] = m ? m.slice(1).map((v) => parseInt(v, 16)) : [255, 0, 0];
  return `rgba(${r},${g},${b},${alpha})`;
}

function handle(ctx, t, p, { fill = "#fff", stroke = "#111", r = HANDLE } = {}) {
  const [x, y] = toScreen(t, p[0], p[1]);
  ctx.beginPath();
  ctx.arc(x, y, r, 0, Math.PI * 2);
  ctx.fillStyle = fill;
  ctx.fill();
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = stroke;
  ctx.stroke();
}

/**
 * @param ctx 2D context in screen pixels
 * @param t view transform
 * @param state AnnotationState
 * @param view {colours: Map(classId -> hex), hover: {vertex?, edge?}, cursor: [x, y] image coords}
 */
export function drawAnnotations(ctx, t, state, view) {
  state.polygons.forEach((p, i) => {
    const colour = view.colours.get(p.label_class) || "#ff3b30";
    const selected = i === state.selected;
    ctx.beginPath();
    ringPath(ctx, p.polygon.outer, t);
    for (const hole of p.polygon.holes || []) ringPath(ctx, hole, t);
    ctx.fillStyle = hexToRgba(colour, selected ? 0.35 : 0.25);
    ctx.fill("evenodd");
    ctx.lineWidth = selected ? 2.5 : 1.5;
    ctx.strokeStyle = colour;
    ctx.setLineDash(p.source === "prediction" ? [6, 4] : []);
    ctx.stroke();
    ctx.setLineDash([]);
    if (selected) {
      for (const ring of [p.polygon.outer, ...(p.polygon.holes || [])]) for (const v of ring) handle(ctx, t, v, { stroke: colour });
    }
  });
  const hv = view.hover && view.hover.vertex;
  if (hv) {
    const poly = state.polygons[hv.polygon];
    const ring = poly && (hv.ring === "outer" ? poly.polygon.outer : poly.polygon.holes[hv.ring]);
    if (ring && ring[hv.vertex]) handle(ctx, t, ring[hv.vertex], { fill: "#ffd60a", r: HANDLE + 1 });
  } else if (view.hover && view.hover.edge) {
    handle(ctx, t, view.hover.edge.point, { fill: "rgba(255,255,255,.7)", r: HANDLE - 1 });
  }
  const sv = view.selectedVertex;
  if (sv) {
    const poly = state.polygons[sv.polygon];
    const ring = poly && (sv.ring === "outer" ? poly.polygon.outer : poly.polygon.holes[sv.ring]);
    if (ring && ring[sv.vertex]) handle(ctx, t, ring[sv.vertex], { fill: "#ff9500", r: HANDLE + 1 });
  }
  const d = state.draft;
  if (d && d.points.length) {
    ctx.beginPath();
    d.points.forEach((p, i) => {
      const [x, y] = toScreen(t, p[0], p[1]);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    if (view.cursor) ctx.lineTo(...toScreen(t, view.cursor[0], view.cursor[1]));
    ctx.lineWidth = 2;
    ctx.strokeStyle = d.hole ? "#ffd60a" : "#34c759";
    ctx.setLineDash([5, 3]);
    ctx.stroke();
    ctx.setLineDash([]);
    d.points.forEach((p, i) => handle(ctx, t, p, { fill: i === 0 ? "#34c759" : "#fff", r: i === 0 ? HANDLE + 2 : HANDLE - 1 }));
  }
}

/** White-on-black raster of the polygons (holes cut), the way the server rasterises the mask. */
export function drawMask(canvas, polygons, width, height) {
  const scale = Math.min(canvas.width / width, canvas.height / height);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.setTransform(scale, 0, 0, scale, (canvas.width - width * scale) / 2, (canvas.height - height * scale) / 2);
  ctx.fillStyle = "#fff";
  for (const p of polygons) {
    ctx.beginPath();
    const t = { scale: 1, offsetX: 0, offsetY: 0 };
    ringPath(ctx, p.polygon.outer, t);
    for (const hole of p.polygon.holes || []) ringPath(ctx, hole, t);
    ctx.fill("evenodd");
  }
}

/**
 * What a tool is doing: the brush or eraser stroke being painted (and strokes waiting for the
 * server), the brush outline under the pointer, the box being dragged.
 * @param view {stroke?, pending?: [stroke], brushCursor?: {point, radius, erase}, box?: [x0, y0, x1, y1]}
 */
export function drawToolOverlay(ctx, t, view) {
  const strokes = [...(view.pending || []), view.stroke].filter((s) => s && s.points);
  for (const s of strokes) {
    ctx.beginPath();
    s.points.forEach((p, i) => {
      const [x, y] = toScreen(t, p[0], p[1]);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    if (s.points.length === 1) ctx.lineTo(...toScreen(t, s.points[0][0] + 0.01, s.points[0][1]));
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = 2 * s.radius * t.scale;
    ctx.strokeStyle = s.erase ? "rgba(255,255,255,0.55)" : "rgba(52,199,89,0.45)";
    ctx.stroke();
  }
  const c = view.brushCursor;
  if (c) {
    const [x, y] = toScreen(t, c.point[0], c.point[1]);
    ctx.beginPath();
    ctx.arc(x, y, Math.max(1, c.radius * t.scale), 0, Math.PI * 2);
    ctx.lineWidth = 1.5;
    ctx.setLineDash(c.erase ? [4, 3] : []);
    ctx.strokeStyle = "#fff";
    ctx.stroke();
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#111";
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.arc(x, y, Math.max(1, c.radius * t.scale) + 1.5, 0, Math.PI * 2);
    ctx.stroke();
  }
  if (view.box) {
    const [x0, y0] = toScreen(t, view.box[0], view.box[1]);
    const [x1, y1] = toScreen(t, view.box[2], view.box[3]);
    ctx.setLineDash([6, 4]);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#ffd60a";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.setLineDash([]);
  }
}
