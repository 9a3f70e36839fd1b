// Layered canvas viewer: the image, an optional heatmap overlay, an optional
// predicted-region layer and a shapes layer, each its own <canvas>, all drawn
// with ONE zoom/pan transform so overlays stay locked to the image. No HTTP here:
// it draws what it is given and emits pointer events in image coordinates.

import * as vt from "../view_transform.js";
import { levelsFromRgba } from "../heatmap.js";
import { drawBoxes } from "./rail_layer.js";

// "classes": a road-scene class map (translucent), under the heatmap, same transform.
const LAYERS = ["image", "classes", "overlay", "region", "shapes"];

export class LayeredViewer extends EventTarget {
  /**
   * @param {HTMLElement} stage positioned container; the canvases fill it
   * @param {{panButton?: number[], label?: string}} options panButton: mouse buttons that pan
   */
  constructor(stage, { panButtons = [0, 1, 2], label = "Image viewer" } = {}) {
    super();
    this.stage = stage;
    this.panButtons = panButtons;
    this.canvases = {};
    for (const name of LAYERS) {
      const c = document.createElement("canvas");
      c.className = `layer-${name}`;
      c.dataset.layer = name;
      if (name !== "shapes") c.setAttribute("aria-hidden", "true");
      stage.append(c);
      this.canvases[name] = c;
    }
    const top = this.canvases.shapes;
    top.tabIndex = 0;
    top.setAttribute("role", "img");
    top.setAttribute("aria-label", label);
    this.image = null; // ImageBitmap | HTMLImageElement | HTMLCanvasElement
    this.imageSize = null; // [w, h]
    this.overlay = null; // canvas with the colourised heatmap
    this.overlayOpacity = 0.5;
    this.overlayVisible = true;
    this.classes = null; // canvas with the coloured class map (road scenes)
    this.classesOpacity = 0.45;
    this.classesVisible = true;
    this.region = null; // canvas with the predicted-region outline
    this.regionVisible = true;
    this.drawShapes = null; // (ctx, transform) => void
    this.structure = null; // {mask: canvas | null, boxes: [...], visible} (rail projects, canvas/rail_layer.js)
    this.transform = vt.identity();
    this.spaceDown = false;
    this.#bind();
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(stage);
    this.resize();
  }

  destroy() {
    this.resizeObserver.disconnect();
    window.removeEventListener("keydown", this.onKeyDown);
    window.removeEventListener("keyup", this.onKeyUp);
    for (const c of Object.values(this.canvases)) c.remove();
  }

  get viewport() {
    return [this.stage.clientWidth, this.stage.clientHeight];
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const [w, h] = this.viewport;
    for (const c of Object.values(this.canvases)) {
      c.width = Math.max(1, Math.round(w * dpr));
      c.height = Math.max(1, Math.round(h * dpr));
    }
    if (this.imageSize && !this.userMoved) this.fit();
    this.draw();
  }

  /** Shows a new image; the view is fitted unless `keepView` and the size is unchanged. */
  setImage(image, width, height, { keepView = false } = {}) {
    const sameSize = this.imageSize && this.imageSize[0] === width && this.imageSize[1] === height;
    this.image = image;
    this.imageSize = [width, height];
    if (!(keepView && sameSize)) this.fit();
    this.draw();
  }

  /** Nothing to show (an empty queue). */
  clear() {
    this.image = this.overlay = this.region = this.structure = this.classes = null;
    this.imageSize = null;
    this.draw();
  }

  fit() {
    if (!this.imageSize) return;
    const [vw, vh] = this.viewport;
    this.transform = vt.fit(this.imageSize[0], this.imageSize[1], vw, vh);
    this.userMoved = false;
  }

  setOverlay(canvas) {
    this.overlay = canvas;
    this.drawLayer("overlay");
  }

  setOverlayStyle({ opacity, visible }) {
    if (opacity !== undefined) this.overlayOpacity = opacity;
    if (visible !== undefined) this.overlayVisible = visible;
    this.drawLayer("overlay");
  }

  /** The class-map layer: a canvas (or null to remove it), its opacity and visibility. */
  setClassLayer(canvas, { opacity, visible } = {}) {
    if (canvas !== undefined) this.classes = canvas;
    if (opacity !== undefined) this.classesOpacity = opacity;
    if (visible !== undefined) this.classesVisible = visible;
    this.drawLayer("classes");
  }

  setRegion(canvas, visible = this.regionVisible) {
    this.region = canvas;
    this.regionVisible = visible;
    this.drawLayer("region");
  }

  /** The rail mask (a canvas at image size) and boxes in image pixels; drawn under the same transform. */
  setStructure(structure) {
    this.structure = structure;
    this.drawLayer("region");
    this.drawLayer("shapes");
  }

  zoomBy(factor, sx, sy) {
    const [vw, vh] = this.viewport;
    this.transform = vt.zoomAt(this.transform, sx ?? vw / 2, sy ?? vh / 2, factor);
    this.userMoved = true;
    this.draw();
  }

  draw() {
    for (const name of LAYERS) this.drawLayer(name);
  }

  #context(name) {
    const c = this.canvases[name];
    const ctx = c.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, c.width, c.height);
    const t = this.transform;
    ctx.setTransform(dpr * t.scale, 0, 0, dpr * t.scale, dpr * t.offsetX, dpr * t.offsetY);
    // Past 4x the user is looking at pixels: show them as squares, not blurred.
    ctx.imageSmoothingEnabled = t.scale < 4;
    return ctx;
  }

  drawLayer(name) {
    if (!this.imageSize) {
      this.canvases[name].getContext("2d").clearRect(0, 0, this.canvases[name].width, this.canvases[name].height);
      return;
    }
    const ctx = this.#context(name);
    const [w, h] = this.imageSize;
    if (name === "image" && this.image) ctx.drawImage(this.image, 0, 0, w, h);
    if (name === "classes" && this.classes && this.classesVisible) {
      ctx.imageSmoothingEnabled = false;
      ctx.globalAlpha = this.classesOpacity;
      ctx.drawImage(this.classes, 0, 0, w, h);
      ctx.globalAlpha = 1;
    }
    if (name === "overlay" && this.overlay && this.overlayVisible) {
      ctx.globalAlpha = this.overlayOpacity;
      ctx.drawImage(this.overlay, 0, 0, w, h);
      ctx.globalAlpha = 1;
    }
    const structure = this.structure && this.structure.visible !== false ? this.structure : null;
    if (name === "region" && structure && structure.mask) {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(structure.mask, 0, 0, w, h);
    }
    if (name === "region" && this.region && this.regionVisible) {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.region, 0, 0, w, h);
    }
    if (name === "shapes" && (this.drawShapes || (structure && structure.boxes && structure.boxes.length))) {
      const dpr = window.devicePixelRatio || 1;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0); // shapes are drawn in screen pixels for crisp lines
      if (structure && structure.boxes) drawBoxes(ctx, structure.boxes, this.transform);
      if (this.drawShapes) this.drawShapes(ctx, this.transform);
    }
  }

  /** Image coordinates of a mouse event. */
  toImage(e) {
    const r = this.canvases.shapes.getBoundingClientRect();
    return vt.toImage(this.transform, e.clientX - r.left, e.clientY - r.top);
  }

  #emit(type, e, extra = {}) {
    const r = this.canvases.shapes.getBoundingClientRect();
    const screen = [e.clientX - r.left, e.clientY - r.top];
    const ev = new CustomEvent(type, { detail: { image: vt.toImage(this.transform, ...screen), screen, event: e, ...extra }, cancelable: true });
    return this.dispatchEvent(ev);
  }

  #bind() {
    const top = this.canvases.shapes;
    let pan = null;
    top.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = top.getBoundingClientRect();
      this.zoomBy(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    top.addEventListener("contextmenu", (e) => e.preventDefault());
    top.addEventListener("pointerdown", (e) => {
      top.focus({ preventScroll: true });
      // Tools get the first say; whatever they do not claim pans the view.
      const claimed = !this.spaceDown && !this.#emit("viewer-pointerdown", e);
      if (claimed) {
        top.setPointerCapture(e.pointerId);
        return;
      }
      if (this.spaceDown || this.panButtons.includes(e.button)) {
        pan = { x: e.clientX, y: e.clientY, moved: false };
        top.setPointerCapture(e.pointerId);
        top.style.cursor = "grabbing";
      }
    });
    top.addEventListener("pointermove", (e) => {
      if (pan) {
        const dx = e.clientX - pan.x;
        const dy = e.clientY - pan.y;
        if (Math.abs(dx) + Math.abs(dy) > 0) {
          this.transform = vt.panBy(this.transform, dx, dy);
          pan.x = e.clientX;
          pan.y = e.clientY;
          pan.moved = true;
          this.userMoved = true;
          this.draw();
        }
        return;
      }
      this.#emit("viewer-pointermove", e);
    });
    const end = (e) => {
      if (pan) {
        pan = null;
        top.style.cursor = "";
        return;
      }
      this.#emit("viewer-pointerup", e);
    };
    top.addEventListener("pointerup", end);
    top.addEventListener("pointercancel", end);
    this.onKeyDown = (e) => {
      if (e.code === "Space" && e.target === top) {
        this.spaceDown = true;
        e.preventDefault();
      }
    };
    this.onKeyUp = (e) => {
      if (e.code === "Space") this.spaceDown = false;
    };
    window.addEventListener("keydown", this.onKeyDown);
    window.addEventListener("keyup", this.onKeyUp);
  }
}

/** A canvas of (w, h) holding `rgba` (Uint8ClampedArray) — used for overlay and region layers. */
export function canvasFromRgba(rgba, w, h, reuse) {
  const c = reuse && reuse.width === w && reuse.height === h ? reuse : document.createElement("canvas");
  c.width = w;
  c.height = h;
  c.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
  return c;
}

/** Decodes a grey 8-bit PNG (a heatmap) into its levels, without colour management. */
export async function decodeLevels(blob) {
  const bmp = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const c = document.createElement("canvas");
  c.width = bmp.width;
  c.height = bmp.height;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  const levels = levelsFromRgba(ctx.getImageData(0, 0, bmp.width, bmp.height).data);
  bmp.close();
  return { levels, width: c.width, height: c.height };
}
