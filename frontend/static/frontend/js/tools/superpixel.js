// Superpixel snap: a click adds the superpixel under the pointer (SLIC, computed once per
// image on the server) to the polygons of the chosen label class, so outlines follow the
// image's edges; shift+click removes it from every polygon. One undo step per click.
export const superpixelTool = {
  id: "superpixel",
  label: "Superpixel",
  shortcut: "s",
  hint: "click: add the region under the pointer · shift+click: remove it",

  attach(ctx) {
    const { viewer } = ctx;
    viewer.stage.style.cursor = "cell";
    const down = (e) => {
      const { image, event } = e.detail;
      if (event.button !== 0 || event.altKey) return;
      e.preventDefault();
      if (image[0] < 0 || image[1] < 0 || image[0] >= ctx.size[0] || image[1] >= ctx.size[1]) return;
      ctx.apply("superpixel", { point: [image[0], image[1]], erase: event.shiftKey });
    };
    viewer.addEventListener("viewer-pointerdown", down);
    return () => {
      viewer.removeEventListener("viewer-pointerdown", down);
      viewer.stage.style.cursor = "";
    };
  },

  key() {
    return false;
  },
};
