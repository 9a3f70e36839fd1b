// Box to polygon: drag a box around an object; the server's GrabCut (refined by the
// model's heatmap when there is one) finds the object inside and the page adds its
// outline to the polygons of the chosen label class (one undo step).
import { boxFromCorners, clampPoint } from "../geometry.js";

export const boxTool = {
  id: "box",
  label: "Box → polygon",
  shortcut: "r",
  hint: "drag a box a little larger than the object",

  attach(ctx) {
    const { viewer } = ctx;
    let start = null;
    viewer.stage.style.cursor = "crosshair";
    const clamp = (p) => clampPoint(p, ctx.size[0], ctx.size[1]);
    const down = (e) => {
      const { image, event } = e.detail;
      if (event.button !== 0 || event.altKey) return;
      e.preventDefault();
      start = clamp(image);
      ctx.view.box = [...start, ...start];
      ctx.redraw();
    };
    const move = (e) => {
      if (!start) return;
      ctx.view.box = boxFromCorners(start, clamp(e.detail.image));
      ctx.redraw();
    };
    const up = (e) => {
      if (!start) return;
      const box = boxFromCorners(start, clamp(e.detail.image));
      start = null;
      ctx.view.box = null;
      ctx.redraw();
      if (box[2] - box[0] < 3 || box[3] - box[1] < 3) return;
      ctx.apply("box", { box: box.map((v) => Math.round(v)) }, { box });
    };
    viewer.addEventListener("viewer-pointerdown", down);
    viewer.addEventListener("viewer-pointermove", move);
    viewer.addEventListener("viewer-pointerup", up);
    return () => {
      viewer.removeEventListener("viewer-pointerdown", down);
      viewer.removeEventListener("viewer-pointermove", move);
      viewer.removeEventListener("viewer-pointerup", up);
      viewer.stage.style.cursor = "";
      ctx.view.box = null;
    };
  },

  key(e, ctx) {
    if (e.key === "Escape" && ctx.view.box) {
      ctx.view.box = null;
      ctx.redraw();
      return true;
    }
    return false;
  },
};
