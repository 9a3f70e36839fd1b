// Annotation editor: polygon, brush, eraser, box and superpixel tools on a layered
// canvas (tools/index.js), label classes, undo/redo,
// "mark as normal", starting from the model's predicted region, a mask preview,
// and a save that carries the version it read. A 409 tells the user someone else
// changed the image and never overwrites; leaving with unsaved work asks first.
import { api } from "../api.js";
import { h, message, toast, isTyping } from "../dom.js";
import { AnnotationState } from "../annotation_state.js";
import { LayeredViewer } from "../canvas/viewer.js";
import { drawAnnotations, drawMask, drawToolOverlay } from "../canvas/shapes.js";
import { TOOLS } from "../tools/index.js";
import { polygonPixelArea, previewSize, ringSelfIntersects } from "../geometry.js";
import { can } from "../roles.js";

/** Predicted polygons as [{outer, holes}] whether the API sends rings or polygon objects. */
export function predictedPolygons(raw) {
  return (raw || []).map((p) => (Array.isArray(p) ? { outer: p, holes: [] } : { outer: p.outer, holes: p.holes || [] })).filter((p) => p.outer && p.outer.length >= 3);
}

export async function render(root, { project, role, params, setLeaveGuard, query }) {
  const imageId = Number(params.imageId);
  const state = new AnnotationState();
  const view = { colours: new Map(), hover: null, cursor: null, selectedVertex: null, stroke: null, pending: [], brushCursor: null, box: null };

  const stage = h("div.stage", { id: "annotate-stage" });
  const stageStatus = h("div.stage-status", { "aria-live": "polite" }, "Loading…");
  stage.append(stageStatus);

  const title = h("h1", {}, "Annotate");
  const imageName = h("div.muted", { id: "image-name" });
  const banner = h("div", { id: "banner", "aria-live": "polite" });
  const conflict = h("div", { id: "conflict", "aria-live": "assertive" });
  const labelSelect = h("select", { id: "label-class", onchange: () => {
    if (state.selected >= 0) state.setLabelClass(state.selected, Number(labelSelect.value));
  } });
  const holeToggle = h("input", { type: "checkbox", id: "hole-mode" });
  const undoBtn = h("button", { type: "button", id: "undo", "aria-keyshortcuts": "Control+Z", onclick: () => state.undo() }, "Undo");
  const redoBtn = h("button", { type: "button", id: "redo", "aria-keyshortcuts": "Control+Shift+Z", onclick: () => state.redo() }, "Redo");
  const closeBtn = h("button", { type: "button", id: "close-polygon", "aria-keyshortcuts": "Enter", onclick: () => closeDraft() }, "Close polygon");
  const deleteBtn = h("button.danger", { type: "button", id: "delete-polygon", "aria-keyshortcuts": "Delete", onclick: () => state.selected >= 0 && state.deletePolygon(state.selected) }, "Delete polygon");
  const fromPrediction = h("button", { type: "button", id: "from-prediction", onclick: () => startFromPrediction() }, "Start from prediction");
  const normalBtn = h("button", { type: "button", id: "mark-normal", onclick: () => markNormal() }, "Mark image normal");
  const saveBtn = h("button.primary", { type: "button", id: "save", "aria-keyshortcuts": "Control+S", onclick: () => save() }, "Save");
  const saveState = h("span.muted", { id: "save-state", "aria-live": "polite" });
  const polyList = h("ul.polylist", { id: "polygon-list", "aria-label": "Polygons" });
  const maskCanvas = h("canvas.mask-preview", { id: "mask-preview", width: 240, height: 240, role: "img", "aria-label": "Mask preview" });
  const maskArea = h("div.muted", { id: "mask-area" });
  const toolButtons = new Map(TOOLS.map((t) => [t.id, h("button", {
    type: "button", id: `tool-${t.id}`, "aria-pressed": "false", "aria-keyshortcuts": t.shortcut.toUpperCase(), title: t.hint || t.label,
    onclick: () => selectTool(t.id),
  }, t.label, " ", h("kbd", {}, t.shortcut.toUpperCase()))]));
  const radiusOut = h("output", { id: "brush-radius", for: "brush-radius-input" }, "12 px");
  const radiusInput = h("input", { type: "range", id: "brush-radius-input", min: 1, max: 200, value: 12, "aria-label": "Brush radius",
    oninput: () => setRadius(Number(radiusInput.value)) });
  const toolHint = h("div.muted", { id: "tool-hint" });
  const brushRow = h("label.row.brush-size", { for: "brush-radius-input" }, "Radius ", h("kbd", {}, "["), h("kbd", {}, "]"), radiusInput, radiusOut);
  const prevLink = h("a.button", { id: "prev-image", "data-link": true, href: "#" }, "◀ Previous");
  const nextLink = h("a.button", { id: "next-image", "data-link": true, href: "#" }, "Next ▶");

  // The split decides what a model trains on: admins only (the server checks too).
  const splitSelect = h("select", { id: "image-split", onchange: async () => {
    try {
      const updated = await api.updateImage(imageId, { split: splitSelect.value });
      showImage(updated);
      toast(`Moved to ${updated.split}.`, "success");
    } catch (e) {
      toast(e.message, "error");
    }
  } }, ["train", "val", "test", "unassigned"].map((v) => h("option", { value: v }, v)));
  const side = h("aside.side", { "aria-label": "Annotation controls" },
    h("div.row", {}, title, h("span.spacer"), prevLink, nextLink), imageName,
    can(role, "manage") ? h("label", { for: "image-split" }, "Split", splitSelect) : null,
    banner, conflict,
    h("section", {}, h("h2", {}, "Tools"), h("div.toolbar.tools", { role: "toolbar", "aria-label": "Tools" }, [...toolButtons.values()]),
      brushRow, toolHint),
    h("section", {},
      h("label.block", { for: "label-class" }, "Label class (1–9)", labelSelect),
      h("label", { for: "hole-mode", style: "margin-top:6px" }, holeToggle, "Draw holes ", h("kbd", {}, "H"))),
    h("section.toolbar", {}, undoBtn, redoBtn, closeBtn, deleteBtn, fromPrediction, normalBtn),
    h("section", {}, h("div.row", {}, saveBtn, saveState)),
    h("section", {}, h("h2", {}, "Polygons"), polyList),
    h("section", {}, h("h2", {}, "Mask preview"), maskCanvas, maskArea),
    h("section.keys", {}, h("h2", {}, "Keys"),
      h("div", {}, h("kbd", {}, "P"), " polygon · ", h("kbd", {}, "B"), " brush · ", h("kbd", {}, "E"), " eraser · ", h("kbd", {}, "R"), " box · ", h("kbd", {}, "S"), " superpixel"),
      h("div", {}, "click: add vertex · click first vertex or ", h("kbd", {}, "Enter"), ": close · ", h("kbd", {}, "Esc"), ": cancel"),
      h("div", {}, "drag vertex: move · click edge: insert · ", h("kbd", {}, "Del"), ": delete vertex/polygon"),
      h("div", {}, h("kbd", {}, "Ctrl+Z"), " undo · ", h("kbd", {}, "Ctrl+Shift+Z"), " redo · ", h("kbd", {}, "Ctrl+S"), " save"),
      h("div", {}, "wheel: zoom · right-drag or space+drag: pan · ", h("kbd", {}, "F"), " fit · shift+click: vertex inside a polygon")));

  root.append(h("div.workspace", {}, stage, side));
  const viewer = new LayeredViewer(stage, { panButtons: [1, 2], label: "Image being annotated" });
  const redraw = () => viewer.drawLayer("shapes");
  viewer.drawShapes = (ctx, t) => {
    drawAnnotations(ctx, t, state, view);
    drawToolOverlay(ctx, t, view);
  };

  let image, classes, size = [1, 1], saving = false;
  try {
    [image, classes] = await Promise.all([api.image(imageId), api.labelClasses(project.id)]);
  } catch (e) {
    stageStatus.textContent = e.message;
    return () => viewer.destroy();
  }
  size = [image.width, image.height];
  // The preview has the image's aspect ratio (a 16:9 photo gives a 16:9 preview).
  [maskCanvas.width, maskCanvas.height] = previewSize(image.width, image.height, 240);
  maskCanvas.style.width = `${maskCanvas.width}px`;
  maskCanvas.style.height = `${maskCanvas.height}px`;
  function showImage(img) {
    image = img;
    imageName.textContent = `${img.original_name} · ${img.width}×${img.height} · ${img.split} · ${img.state}`;
    splitSelect.value = img.split;
  }
  showImage(image);
  for (const c of classes) view.colours.set(c.id, c.color || "#ff3b30");
  labelSelect.replaceChildren(...classes.map((c, i) => h("option", { value: c.id }, `${i < 9 ? i + 1 + " · " : ""}${c.name}`)));
  if (!classes.length) labelSelect.append(h("option", { value: "" }, "default (created on save)"));

  const toolCtx = {
    viewer, state, view, size, redraw,
    hole: () => holeToggle.checked,
    labelClass: () => (labelSelect.value ? Number(labelSelect.value) : null),
    close: () => closeDraft(),
    brush: { radius: 12 },
    setRadius: (r) => setRadius(r),
    apply: (kind, body, preview) => applyTool(kind, body, preview),
  };
  let tool = null;
  let detachTool = () => {};
  function selectTool(id) {
    const next = TOOLS.find((t) => t.id === id);
    if (!next || next === tool) return;
    detachTool();
    view.hover = null; // the polygon tool's hover highlight would stay behind
    if (state.draft && next.id !== "polygon") state.cancelDraft();
    tool = next;
    detachTool = tool.attach(toolCtx);
    for (const [tid, b] of toolButtons) b.setAttribute("aria-pressed", String(tid === id));
    stage.dataset.tool = id;
    toolHint.textContent = tool.hint || "";
    brushRow.hidden = !("brush" === id || "eraser" === id);
    redraw();
  }
  function setRadius(r) {
    toolCtx.brush.radius = Math.max(1, Math.min(200, Math.round(r)));
    radiusInput.value = toolCtx.brush.radius;
    radiusOut.textContent = `${toolCtx.brush.radius} px`;
    stage.dataset.brushRadius = toolCtx.brush.radius;
  }
  setRadius(12);
  selectTool(TOOLS[0].id);

  // Tool answers come from the server one at a time, each applied to the polygons it was
  // computed from; if the polygons changed meanwhile, the action is computed again on them.
  let toolChain = Promise.resolve();
  let inFlight = 0;
  function applyTool(kind, body, preview) {
    if (kind === "paint" && preview) view.pending.push(preview);
    inFlight += 1;
    stage.dataset.busy = "true";
    toolChain = toolChain.then(async () => {
      try {
        for (let attempt = 0; attempt < 3; attempt++) {
          const sent = state.toToolPayload();
          const res = await api.annotationTool(imageId, kind, { ...body, polygons: sent, label_class: toolCtx.labelClass() });
          if (JSON.stringify(state.toToolPayload()) !== JSON.stringify(sent)) continue;
          state.replaceAll(res.polygons);
          if (kind === "box") toast(res.used_heatmap ? "Outlined with GrabCut, guided by the model's heatmap." : "Outlined with GrabCut.", "info");
          break;
        }
      } catch (e) {
        toast(e.message, "error");
      } finally {
        if (preview) view.pending = view.pending.filter((p) => p !== preview);
        inFlight -= 1;
        stage.dataset.busy = String(inFlight > 0);
        redraw();
      }
    });
    return toolChain;
  }

  function closeDraft() {
    if (!state.draft) return;
    if (state.draft.points.length < 3) return toast("A polygon needs at least three vertices.", "error");
    if (ringSelfIntersects(state.draft.points)) toast("This polygon crosses itself; its mask may not be what you expect.", "info");
    if (state.closeDraft(toolCtx.labelClass()) < 0) toast("Start a hole inside a polygon.", "error");
  }

  async function refreshClasses() {
    classes = await api.labelClasses(project.id);
    for (const c of classes) view.colours.set(c.id, c.color || "#ff3b30");
    const keep = labelSelect.value;
    labelSelect.replaceChildren(...classes.map((c, i) => h("option", { value: c.id }, `${i < 9 ? i + 1 + " · " : ""}${c.name}`)));
    if (!classes.length) labelSelect.append(h("option", { value: "" }, "default (created on save)"));
    if (keep) labelSelect.value = keep;
    refreshSide();
  }

  function refreshSide() {
    undoBtn.disabled = !state.canUndo;
    redoBtn.disabled = !state.canRedo;
    closeBtn.disabled = !(state.draft && state.draft.points.length >= 3);
    deleteBtn.disabled = state.selected < 0;
    saveState.textContent = state.dirty ? "Unsaved changes" : `Saved · version ${state.version}`;
    stage.dataset.version = state.version;
    stage.dataset.dirty = String(state.dirty);
    stage.dataset.polygons = state.polygons.length;
    if (state.selected >= 0 && state.polygons[state.selected]) labelSelect.value = state.polygons[state.selected].label_class ?? "";
    polyList.replaceChildren(...state.polygons.map((p, i) => {
      const cls = classes.find((c) => c.id === p.label_class) || { name: "default class" };
      return h("li", { class: i === state.selected ? "selected" : "" },
        h("span.swatch", { style: `background:${view.colours.get(p.label_class) || "#f00"}` }),
        h("button.link", { type: "button", style: "color:inherit", onclick: () => state.select(i) }, `${cls.name} · ${p.polygon.outer.length} vertices${p.polygon.holes.length ? ` · ${p.polygon.holes.length} hole(s)` : ""} · ${Math.round(polygonPixelArea(p.polygon))} px${p.source === "prediction" ? " · predicted" : ""}`));
    }));
    drawMask(maskCanvas, state.polygons, size[0], size[1]);
    // Overlaps count once on the server; the sum is what the polygons cover when apart.
    const total = Math.round(state.polygons.reduce((a, p) => a + polygonPixelArea(p.polygon), 0));
    maskArea.textContent = state.polygons.length ? `${total} px · ${(100 * total / (size[0] * size[1])).toFixed(2)}% of the image` : "empty: the image is normal once saved";
    stage.dataset.maskArea = total;
  }
  state.onChange(() => {
    redraw();
    refreshSide();
  });

  async function loadAnnotations() {
    const data = await api.annotations(imageId);
    state.load(data);
    banner.replaceChildren();
    if (data.is_draft) banner.append(message("This draft was made from the model's predicted region: refine it and save.", "info"));
    conflict.replaceChildren();
  }

  async function save() {
    if (saving) return;
    if (state.draft) closeDraft();
    saving = true;
    saveBtn.disabled = true;
    const started = performance.now();
    try {
      const res = await api.saveAnnotations(imageId, state.toPayload());
      // Polygons saved without a class got the project's default one: take the server's set so
      // later brush strokes (in that class) merge with them.
      if (state.polygons.some((p) => p.label_class == null)) state.load(res);
      else state.markSaved(res.version);
      showImage({ ...image, state: res.state });
      if (!classes.length) refreshClasses();
      conflict.replaceChildren();
      banner.replaceChildren();
      window.__annotate = { lastSaveMs: performance.now() - started };
      stage.dataset.savedVersion = res.version;
      toast("Saved.", "success");
    } catch (e) {
      if (e.isConflict) showConflict(e);
      else toast(`Not saved: ${e.message}`, "error");
    } finally {
      saving = false;
      saveBtn.disabled = false;
    }
  }

  function showConflict(e) {
    const current = e.details && (e.details.current_version ?? e.details.version);
    conflict.replaceChildren(h("div.msg.msg-error.conflict", { role: "alert" },
      h("p", {}, h("strong", {}, "Someone else changed this image"), ` since you opened it (you read version ${state.version}${current != null ? `, it is now version ${current}` : ""}). Your changes were not saved and nothing was overwritten.`),
      h("div.row", {},
        h("button", { type: "button", id: "conflict-reload", onclick: async () => {
          await loadAnnotations();
          toast("Reloaded the latest version.", "info");
        } }, "Reload their version (discard mine)"),
        h("button", { type: "button", onclick: () => conflict.replaceChildren() }, "Keep my changes on screen"))));
  }

  async function startFromPrediction() {
    try {
      const preds = await api.imagePredictions(imageId);
      const best = preds.find((p) => p.model_version && p.model_version.is_active) || preds[0];
      const polys = predictedPolygons(best && (best.polygons || best.predicted_polygons));
      if (!polys.length) return toast("No predicted region for this image.", "info");
      state.replaceWith(polys, toolCtx.labelClass() ?? (classes[0] && classes[0].id));
      toast(`${polys.length} predicted polygon(s) loaded: refine them and save.`, "info");
    } catch (e) {
      toast(e.message, "error");
    }
  }

  // Saving an empty set is what makes an image normal on the server (its state follows the polygons).
  async function markNormal() {
    if (state.polygons.length && !confirm("Remove every polygon and mark this image normal?")) return;
    state.clear();
    await save();
  }

  function onKey(e) {
    if (isTyping(e)) return;
    const k = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && k === "z") state[e.shiftKey ? "redo" : "undo"]();
    else if ((e.ctrlKey || e.metaKey) && k === "y") state.redo();
    else if ((e.ctrlKey || e.metaKey) && k === "s") save();
    else if (e.ctrlKey || e.metaKey || e.altKey) return;
    else if (tool.key(e, toolCtx)) { /* handled by the tool */ }
    else if (TOOLS.some((t) => t.shortcut === k)) selectTool(TOOLS.find((t) => t.shortcut === k).id);
    else if ((k === "delete" || k === "backspace") && state.selected >= 0) state.deletePolygon(state.selected);
    else if (k === "escape" && state.selected >= 0) state.select(-1);
    else if (k === "h") holeToggle.checked = !holeToggle.checked;
    else if (k === "f" || k === "0") { viewer.fit(); viewer.draw(); }
    else if (k === "+" || k === "=") viewer.zoomBy(1.25);
    else if (k === "-") viewer.zoomBy(0.8);
    else if (/^[1-9]$/.test(k) && classes[+k - 1]) {
      labelSelect.value = classes[+k - 1].id;
      labelSelect.dispatchEvent(new Event("change"));
    } else return;
    e.preventDefault();
  }
  window.addEventListener("keydown", onKey);
  setLeaveGuard((silent) => !state.dirty || (!silent && confirm("You have unsaved changes on this image. Leave without saving?")));

  // Neighbours for previous/next: in the "images to annotate" queue when opened from it,
  // else in the image list with the browser's filters.
  const fromQueue = query.get("from") === "queue";
  const listQuery = fromQueue ? { from: "queue" } : Object.fromEntries([...query.entries()].filter(([k]) => ["split", "state", "annotated"].includes(k)));
  const neighbourIds = fromQueue
    ? api.annotationQueue(project.id).then((q) => q.results.map((r) => r.image.id))
    : api.images(project.id, listQuery).then((pageData) => pageData.results.map((i) => i.id));
  neighbourIds.then((ids) => {
    const at = ids.indexOf(imageId);
    const qs = new URLSearchParams(listQuery).toString();
    const link = (a, id) => {
      if (id == null) a.setAttribute("aria-disabled", "true"), a.removeAttribute("href");
      else a.href = `/projects/${project.id}/images/${id}/annotate/${qs ? "?" + qs : ""}`;
    };
    link(prevLink, at > 0 ? ids[at - 1] : null);
    // An image already done has left the queue: "next" is then the queue's first.
    link(nextLink, at >= 0 ? (at < ids.length - 1 ? ids[at + 1] : null) : fromQueue ? ids[0] ?? null : null);
  }).catch(() => {});

  try {
    const [bitmap] = await Promise.all([
      fetch(api.imageFileUrl(imageId), { credentials: "same-origin" }).then((r) => {
        if (!r.ok) throw new Error(`image: ${r.status}`);
        return r.blob();
      }).then((b) => createImageBitmap(b)),
      loadAnnotations(),
    ]);
    viewer.setImage(bitmap, image.width, image.height);
    stageStatus.textContent = "";
    stage.dataset.ready = "true";
  } catch (e) {
    stageStatus.textContent = e.message;
  }
  refreshSide();
  viewer.canvases.shapes.focus({ preventScroll: true });

  return () => {
    window.removeEventListener("keydown", onKey);
    detachTool();
    viewer.destroy();
  };
}
