// The polygon tool: turns pointer and key events on the viewer into AnnotationState
// operations. Click adds a vertex; clicking the first vertex (or Enter) closes;
// dragging a vertex moves it; clicking an edge inserts a vertex (and drags it);
// Delete removes the selected vertex, else the selected polygon; Esc cancels the
// polygon being drawn. Shift+click always adds a vertex (to start inside another
// polygon); with "hole" on, the new ring becomes a hole of the polygon under it.
import { nearestEdge, nearestVertex, polygonAt, distance, clampPoint } from "../geometry.js";
import { HANDLE } from "../canvas/shapes.js";

export const polygonTool = {
  id: "polygon",
  label: "Polygon",
  shortcut: "p",
  hint: "click: add vertex · drag vertex: move",

  /** ctx: {viewer, state, labelClass(), hole(), size: [w, h], view (hover/cursor), redraw()} */
  attach(ctx) {
    const { viewer, state } = ctx;
    let drag = null;
    const radius = () => (HANDLE + 3) / viewer.transform.scale;
    const clamp = (p) => clampPoint(p, ctx.size[0], ctx.size[1]);
    const hitsFor = (p) => {
      const polys = state.polygons.map((x) => x.polygon);
      const vertex = nearestVertex(polys, p, radius());
      const edge = vertex ? null : nearestEdge(polys, p, radius());
      return { vertex, edge };
    };

    const down = (e) => {
      const { image, event } = e.detail;
      if (event.button !== 0 || event.altKey) return; // others pan
      e.preventDefault(); // claimed: no panning
      const p = clamp(image);
      const d = state.draft;
      if (d) {
        if (d.points.length >= 3 && distance(p, d.points[0]) <= radius()) ctx.close();
        else state.addDraftPoint(p, { hole: d.hole });
        return;
      }
      if (!event.shiftKey) {
        const { vertex, edge } = hitsFor(p);
        if (vertex) {
          state.select(vertex.polygon);
          ctx.view.selectedVertex = vertex;
          drag = { ref: vertex, moved: false };
          state.beginGesture();
          return;
        }
        if (edge) {
          state.select(edge.polygon);
          state.beginGesture();
          const at = state.insertVertex(edge, edge.point);
          const ref = { polygon: edge.polygon, ring: edge.ring, vertex: at };
          ctx.view.selectedVertex = ref;
          drag = { ref, moved: true };
          return;
        }
        const inside = polygonAt(state.polygons.map((x) => x.polygon), p);
        if (inside >= 0 && !ctx.hole() && inside !== state.selected) {
          ctx.view.selectedVertex = null;
          state.select(inside);
          return;
        }
      }
      ctx.view.selectedVertex = null;
      state.select(-1);
      state.addDraftPoint(p, { hole: ctx.hole() });
    };

    const move = (e) => {
      const p = clamp(e.detail.image);
      ctx.view.cursor = p;
      if (drag) {
        drag.moved = true;
        state.moveVertex(drag.ref, p);
        return;
      }
      ctx.view.hover = state.draft ? null : hitsFor(p);
      viewer.stage.style.cursor = ctx.view.hover && ctx.view.hover.vertex ? "move" : ctx.view.hover && ctx.view.hover.edge ? "copy" : "crosshair";
      ctx.redraw();
    };

    const up = () => {
      if (drag) {
        state.endGesture();
        drag = null;
      }
    };

    viewer.addEventListener("viewer-pointerdown", down);
    viewer.addEventListener("viewer-pointermove", move);
    viewer.addEventListener("viewer-pointerup", up);
    return () => {
      viewer.removeEventListener("viewer-pointerdown", down);
      viewer.removeEventListener("viewer-pointermove", move);
      viewer.removeEventListener("viewer-pointerup", up);
    };
  },

  /** Keys the tool handles; returns true when it used the key. */
  key(e, ctx) {
    const { state } = ctx;
    if (e.key === "Enter" && state.draft) {
      ctx.close();
      return true;
    }
    if (e.key === "Escape") {
      if (state.draft) state.cancelDraft();
      else {
        ctx.view.selectedVertex = null;
        state.select(-1);
      }
      return true;
    }
    if (e.key === "Delete" || e.key === "Backspace") {
      if (state.draft) {
        // Backspace while drawing takes back the last vertex, like undo.
        state.undo();
        return true;
      }
      const sv = ctx.view.selectedVertex;
      if (sv && state.polygons[sv.polygon]) {
        state.deleteVertex(sv);
        ctx.view.selectedVertex = null;
        return true;
      }
      if (state.selected >= 0) {
        state.deletePolygon(state.selected);
        return true;
      }
    }
    return false;
  },
};
