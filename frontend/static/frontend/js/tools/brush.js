// Brush and eraser: paint with a disc (radius keys [ and ]) over the same polygons the
// polygon tool edits. A stroke is drawn on the canvas while the pointer moves; when it
// ends, the page sends it to the server, which rasterises the polygons, paints the
// stroke and traces the result back to polygons with holes (one undo step). The brush
// adds to the polygons of the chosen label class, the eraser removes from all.
import { clampPoint, thinStroke } from "../geometry.js";

export const MIN_RADIUS = 1;
export const MAX_RADIUS = 200;

/** The radius after one press of [ (smaller) or ] (larger): steps of about 20%, at least 1 px. */
export function nextRadius(radius, key) {
  const next = key === "]" ? Math.max(radius + 1, Math.round(radius * 1.2)) : Math.min(radius - 1, Math.round(radius / 1.2));
  return Math.max(MIN_RADIUS, Math.min(MAX_RADIUS, next));
}

function makeBrush({ id, label, shortcut, erase }) {
  return {
    id,
    label,
    shortcut,
    hint: `drag: ${erase ? "erase" : "paint"} · [ ]: radius`,

    /** ctx: {viewer, state, view, size, redraw, brush: {radius}, apply(kind, body)} */
    attach(ctx) {
      const { viewer } = ctx;
      let stroke = null;
      viewer.stage.style.cursor = "none";
      const clamp = (p) => clampPoint(p, ctx.size[0], ctx.size[1]);
      const down = (e) => {
        const { image, event } = e.detail;
        if (event.button !== 0 || event.altKey) return;
        e.preventDefault();
        stroke = { points: [clamp(image)], radius: ctx.brush.radius, erase };
        ctx.view.stroke = stroke;
        ctx.redraw();
      };
      const move = (e) => {
        const p = clamp(e.detail.image);
        ctx.view.brushCursor = { point: p, radius: ctx.brush.radius, erase };
        if (stroke) stroke.points.push(p);
        ctx.redraw();
      };
      const up = () => {
        if (!stroke) return;
        const done = stroke;
        stroke = null;
        ctx.view.stroke = null; // shown as pending until the server's answer replaces it
        ctx.apply("paint", { strokes: [{ points: thinStroke(done.points, Math.max(1, done.radius / 3)), radius: done.radius, erase }] }, done);
      };
      viewer.addEventListener("viewer-pointerdown", down);
      viewer.addEventListener("viewer-pointermove", move);
      viewer.addEventListener("viewer-pointerup", up);
      return () => {
        viewer.removeEventListener("viewer-pointerdown", down);
        viewer.removeEventListener("viewer-pointermove", move);
        viewer.removeEventListener("viewer-pointerup", up);
        viewer.stage.style.cursor = "";
        ctx.view.stroke = null;
        ctx.view.brushCursor = null;
      };
    },

    key(e, ctx) {
      if (e.key === "[" || e.key === "]") {
        ctx.setRadius(nextRadius(ctx.brush.radius, e.key));
        if (ctx.view.brushCursor) ctx.view.brushCursor.radius = ctx.brush.radius;
        ctx.redraw();
        return true;
      }
      if (e.key === "Escape" && ctx.view.stroke) {
        ctx.view.stroke = null;
        ctx.redraw();
        return true;
      }
      return false;
    },
  };
}

export const brushTool = makeBrush({ id: "brush", label: "Brush", shortcut: "b", erase: false });
export const eraserTool = makeBrush({ id: "eraser", label: "Eraser", shortcut: "e", erase: true });
