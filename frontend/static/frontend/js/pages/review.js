// Review viewer for inspectors: the queue in the API's order, the image with the
// heatmap as a separate overlay layer (opacity, colour map, toggle), the model's two
// thresholds (the image one says whether this image is flagged; the region one
// redraws the predicted region in the browser from the 8-bit heatmap), zoom/pan
// locked across layers, verdicts by button or key with Ctrl+Z to take the last one
// back, the next images preloaded so switching does not wait on the network.
import { api } from "../api.js";
import { h, message, toast, fmtNumber, isTyping } from "../dom.js";
import { can } from "../roles.js";
import { LayeredViewer, canvasFromRgba, decodeLevels } from "../canvas/viewer.js";
import { railMaskRgba } from "../canvas/rail_layer.js";
import { queueItem } from "./review_item.js";
import { reviewClassLayer } from "./review_classes.js";
import { fmtThreshold } from "../metrics.js";
import { thresholdControl } from "../threshold_control.js";
import { COLOUR_MAPS, DEFAULT_COLOUR_MAP, colourLut, colouriseInto, regionFromLevels, regionOutlineInto, scoreToLevel } from "../heatmap.js";

const PREFETCH_AHEAD = 3;
const KEEP = 6; // decoded items kept around the current one
const VERDICT_KEYS = { a: "anomaly", n: "normal", u: "unsure" };

export async function render(root, { project, role }) {
  const stage = h("div.stage", { id: "review-stage" });
  const stageStatus = h("div.stage-status", { "aria-live": "polite" });
  const empty = h("div.stage-empty", { hidden: true });
  const done = h("div.queue-done", { id: "queue-done", hidden: true, role: "dialog", "aria-labelledby": "queue-done-title" });
  stage.append(stageStatus, empty, done);

  // --- side panel controls ---
  const pos = h("span.queue-pos", { id: "queue-pos" }, "–");
  const name = h("div.name", { id: "image-name" }, "");
  const score = h("div.score", { id: "score" }, "–");
  const scoreInfo = h("div.muted", { id: "score-info" }, "");
  // A fixed-height line (never pushes the buttons): the stored verdict and how to take it back.
  const verdictNow = h("div.verdict-now", { id: "verdict-now", "aria-live": "polite" });
  const vbtn = (verdict, key, label) =>
    h("button", { type: "button", id: `verdict-${verdict}`, "data-verdict": verdict, "aria-keyshortcuts": key.toUpperCase(), onclick: () => giveVerdict(verdict) }, label, " ", h("kbd", {}, key.toUpperCase()));
  const comment = h("textarea", { id: "review-comment", rows: 2, placeholder: "Optional comment" });
  const prevBtn = h("button", { type: "button", id: "prev", "aria-keyshortcuts": "K ArrowLeft", onclick: () => go(index - 1) }, "◀ Previous ", h("kbd", {}, "K"));
  const nextBtn = h("button", { type: "button", id: "next", "aria-keyshortcuts": "J ArrowRight", onclick: () => go(index + 1) }, "Next ", h("kbd", {}, "J"), " ▶");
  const showHeat = h("input", { type: "checkbox", id: "show-heatmap", checked: true, onchange: () => viewer.setOverlayStyle({ visible: showHeat.checked }) });
  const opacity = h("input", { type: "range", id: "heatmap-opacity", min: 0, max: 1, step: 0.05, value: 0.5, oninput: () => viewer.setOverlayStyle({ opacity: +opacity.value }) });
  // After a choice in a select, keys go back to the viewer (a focused select would eat J/K).
  const backToViewer = () => viewer.canvases.shapes.focus({ preventScroll: true });
  const cmap = h("select", { id: "colour-map", onchange: () => { overlays.clear(); showCurrent(false); backToViewer(); } }, COLOUR_MAPS.map((c) => h("option", { value: c, selected: c === DEFAULT_COLOUR_MAP }, c)));
  const showRegion = h("input", { type: "checkbox", id: "show-region", checked: true, onchange: () => viewer.setRegion(viewer.region, showRegion.checked) });
  // Region threshold: redraws the outline live. Image threshold: whether this image is flagged.
  const regionControl = thresholdControl({ id: "threshold", label: "Region threshold", lo: 0, hi: 1, value: 0.5, modelValue: NaN,
    help: "Heatmap pixels above it are outlined.", oninput: () => drawRegion() });
  const thresholdValue = h("output", { id: "threshold-value", for: "threshold" }, "–");
  const imageControl = thresholdControl({ id: "image-threshold", label: "Image threshold", lo: 0, hi: 1, value: 0.5, modelValue: NaN,
    help: "An image whose score is above it is flagged.", oninput: () => showFlag() });
  const flagNow = h("div.muted.small", { id: "flag-at-threshold" });
  const applyThresholds = can(role, "manage")
    ? h("button", { type: "button", id: "thresholds-apply", onclick: () => saveThresholds() }, "Apply both to the model")
    : null;

  const queueFilter = h("select", { id: "queue-filter", onchange: () => restart().then(backToViewer) },
    h("option", { value: "" }, "flagged and unreviewed first"),
    h("option", { value: "unreviewed" }, "not reviewed yet"),
    h("option", { value: "flagged" }, "flagged only"),
    h("option", { value: "reviewed" }, "already reviewed"),
    h("option", { value: "frames" }, "all in name order (video frames)"),
    h("option", { value: "team" }, "shared: next image no other reviewer has"));
  const side = h("aside.side", { "aria-label": "Review controls" },
    h("div.row", {}, h("h1", {}, "Review"), h("span.spacer"), pos),
    h("label", { for: "queue-filter" }, "Queue", queueFilter),
    name, h("div", {}, score, scoreInfo),
    h("section", {}, h("h2", {}, "Verdict"), h("div.verdicts", {}, vbtn("anomaly", "a", "Anomaly"), vbtn("normal", "n", "Normal"), vbtn("unsure", "u", "Unsure")),
      h("label.block", { for: "review-comment", style: "margin-top:6px" }, "Comment", comment), verdictNow),
    h("div.row", {}, prevBtn, h("span.spacer"), nextBtn),
    h("section", {}, h("h2", {}, "Heatmap"),
      h("label", { for: "show-heatmap" }, showHeat, "Show heatmap ", h("kbd", {}, "H")),
      h("label.block", { for: "heatmap-opacity" }, "Opacity", opacity),
      h("label.block", { for: "colour-map" }, "Colour map", cmap)),
    h("section", {}, h("h2", {}, "Thresholds"),
      h("label", { for: "show-region" }, showRegion, "Show region ", h("kbd", {}, "R"), h("span.spacer"), h("span.muted.small", {}, "region ", thresholdValue)),
      regionControl.node, imageControl.node, flagNow, applyThresholds),
    h("section.keys", {}, h("h2", {}, "Keys"),
      h("div", {}, h("kbd", {}, "A"), " anomaly · ", h("kbd", {}, "N"), " normal · ", h("kbd", {}, "U"), " unsure · ", h("kbd", {}, "Ctrl+Z"), " undo"),
      h("div", {}, h("kbd", {}, "J"), "/", h("kbd", {}, "→"), " next · ", h("kbd", {}, "K"), "/", h("kbd", {}, "←"), " previous"),
      h("div", {}, "wheel zoom · drag pan · ", h("kbd", {}, "F"), " fit · ", h("kbd", {}, "+"), h("kbd", {}, "−"), " zoom")));

  root.append(h("div.workspace", {}, stage, side));
  const viewer = new LayeredViewer(stage, { label: "Image with heatmap overlay" });
  viewer.setOverlayStyle({ opacity: 0.5 });
  const classLayer = reviewClassLayer({ viewer, project, stage });
  side.append(classLayer.element);
  // Panels over the canvases: the canvases are appended after them, so lift them above.
  stage.append(stageStatus, empty, done);

  let items = [];
  let nextPage = null;
  let index = 0;
  let alive = true;
  const cache = new Map(); // predictionId -> Promise<{bitmap, levels, width, height}>
  const overlays = new Map(); // predictionId -> overlay canvas for the current colour map
  let regionCanvas = null;
  const timings = (window.__review = { switches: [], shown: null });

  const current = () => items[index];

  function load(item) {
    if (!cache.has(item.predictionId)) {
      const p = (async () => {
        const [imgBlob, heatBlob, railBlob] = await Promise.all([
          fetch(item.imageUrl, { credentials: "same-origin" }).then(okBlob),
          fetch(item.heatmapUrl, { credentials: "same-origin" }).then(okBlob),
          item.classMaskUrl ? fetch(item.classMaskUrl, { credentials: "same-origin" }).then(okBlob) : null,
        ]);
        const [bitmap, heat, rail] = await Promise.all([
          createImageBitmap(imgBlob), decodeLevels(heatBlob), railBlob ? decodeLevels(railBlob) : null,
        ]);
        const railMask = rail ? canvasFromRgba(railMaskRgba(rail.levels), rail.width, rail.height) : null;
        return { bitmap, ...heat, railMask };
      })();
      p.catch(() => cache.delete(item.predictionId));
      cache.set(item.predictionId, p);
    }
    return cache.get(item.predictionId);
  }

  function overlayFor(item, data) {
    if (!overlays.has(item.predictionId)) {
      const rgba = colouriseInto(data.levels, colourLut(cmap.value), new Uint8ClampedArray(data.levels.length * 4));
      overlays.set(item.predictionId, canvasFromRgba(rgba, data.width, data.height));
    }
    return overlays.get(item.predictionId);
  }

  function prefetch() {
    for (let k = 1; k <= PREFETCH_AHEAD; k++) {
      const ahead = items[index + k];
      // Colourise ahead too, so showing it is only drawing.
      if (ahead) load(ahead).then((d) => overlayFor(ahead, d)).catch(() => {});
    }
    if (items[index - 1]) load(items[index - 1]).catch(() => {});
    for (const [id, p] of cache) {
      const i = items.findIndex((it) => it.predictionId === id);
      if (i < index - KEEP || i > index + KEEP) {
        p.then((d) => d.bitmap.close && d.bitmap.close()).catch(() => {});
        cache.delete(id);
        overlays.delete(id);
      }
    }
    if (nextPage && index + PREFETCH_AHEAD + 1 >= items.length) loadPage(nextPage);
  }

  // The sliders span this image's whole map range and the model's values, so both can be reached.
  function setThresholdSliders(item, keepValues = false) {
    regionControl.setRange(item.vmin, item.vmax, item.regionThreshold);
    imageControl.setRange(item.vmin, item.vmax, item.threshold);
    if (!keepValues) {
      regionControl.set(item.regionThreshold ?? (item.vmin + item.vmax) / 2);
      imageControl.set(item.threshold ?? item.vmax);
    }
    showFlag();
  }

  function showFlag() {
    const item = current();
    if (!item) return;
    const flagged = item.score > imageControl.value;
    flagNow.textContent = `score ${fmtThreshold(item.score)} ${flagged ? ">" : "≤"} ${fmtThreshold(imageControl.value)}: ${flagged ? "flagged" : "not flagged"} at this image threshold`;
    flagNow.dataset.flagged = String(flagged);
  }

  async function saveThresholds() {
    const item = current();
    if (!item) return;
    const body = { threshold: imageControl.value, region_threshold: regionControl.value };
    try {
      await api.setThresholds(item.modelId, body);
      for (const it of items) if (it.modelId === item.modelId) Object.assign(it, { threshold: body.threshold, regionThreshold: body.region_threshold });
      setThresholdSliders(item, true);
      toast(`Thresholds of model v${item.modelNumber} set: predictions re-flagged; a job redraws their regions.`, "success");
    } catch (e) {
      toast(e.message, "error");
    }
  }

  let lastData = null;
  function drawRegion() {
    const item = current();
    if (!item || !lastData) return;
    const t = regionControl.value;
    thresholdValue.textContent = fmtThreshold(t);
    const { region, count } = regionFromLevels(lastData.levels, Math.ceil(scoreToLevel(t, item.vmin, item.vmax)));
    const rgba = regionOutlineInto(region, lastData.width, lastData.height, [255, 255, 255], new Uint8ClampedArray(region.length * 4));
    regionCanvas = canvasFromRgba(rgba, lastData.width, lastData.height, regionCanvas);
    viewer.setRegion(regionCanvas, showRegion.checked);
    stage.dataset.regionPixels = count;
  }

  async function showCurrent(resetThresholdToModel = true) {
    const item = current();
    const t0 = performance.now();
    stage.dataset.ready = "false";
    if (!item) return;
    pos.textContent = `${index + 1} / ${items.length}${nextPage ? "+" : ""}`;
    name.textContent = item.name;
    score.textContent = fmtNumber(item.score);
    scoreInfo.textContent = `${item.flagged ? "flagged" : "not flagged"} · model v${item.modelNumber ?? "?"} ${item.pipeline} · image threshold ${fmtThreshold(item.threshold)} · region threshold ${fmtThreshold(item.regionThreshold)}`;
    comment.value = item.comment || "";
    showVerdict(item);
    prevBtn.disabled = index === 0;
    nextBtn.disabled = index >= items.length - 1 && !nextPage;
    setThresholdSliders(item, !resetThresholdToModel);
    let data;
    try {
      data = await load(item);
    } catch (e) {
      stageStatus.textContent = `Could not load this image: ${e.message}`;
      return;
    }
    if (current() !== item) return; // the user moved on while it loaded
    lastData = data;
    viewer.setImage(data.bitmap, data.bitmap.width, data.bitmap.height, { keepView: true });
    viewer.setOverlay(overlayFor(item, data));
    viewer.setStructure({ mask: data.railMask, boxes: item.boxes, visible: true });
    stage.dataset.boxes = item.boxes.length;
    classLayer.show(item);
    drawRegion();
    stageStatus.textContent = "";
    stage.dataset.predictionId = item.predictionId;
    stage.dataset.imageId = item.imageId;
    stage.dataset.ready = "true";
    timings.shown = { predictionId: item.predictionId, ms: performance.now() - t0 };
    prefetch();
  }

  function showVerdict(item) {
    for (const b of side.querySelectorAll("[data-verdict]")) b.setAttribute("aria-pressed", String(b.dataset.verdict === item.verdict));
    verdictNow.textContent = item.verdict ? `Verdict: ${item.verdict}${undoStack.length ? " · Ctrl+Z undoes the last one" : ""}` : "No verdict yet";
  }

  // Verdicts given on this page, newest last: Ctrl+Z takes the newest back (server and screen).
  const undoStack = [];
  let undoing = false;
  async function undoLast() {
    if (undoing || !undoStack.length) return;
    undoing = true;
    const { item, reviewId } = undoStack[undoStack.length - 1];
    try {
      const prediction = await api.undoReview(reviewId);
      undoStack.pop();
      item.verdict = prediction.verdict ?? null;
      const at = items.indexOf(item);
      toast(`Verdict on ${item.name} undone.`, "info");
      if (at >= 0) await go(at);
      showVerdict(item);
      stage.dataset.lastUndo = `${item.predictionId}`;
    } catch (e) {
      toast(`Could not undo: ${e.message}`, "error");
    } finally {
      undoing = false;
    }
  }

  function showDone() {
    const given = undoStack.length;
    done.replaceChildren(
      h("h2", { id: "queue-done-title" }, "Queue done"),
      h("p", {}, `Every image in this queue has been shown${given ? `; you gave ${given} verdict${given === 1 ? "" : "s"} on this page` : ""}.`),
      h("div.row", {},
        h("button.primary", { type: "button", id: "queue-done-restart", onclick: () => { queueFilter.value = "unreviewed"; restart(); } }, "Images still without a verdict"),
        h("button", { type: "button", onclick: () => go(0) }, "Back to the first image"),
        given ? h("button", { type: "button", onclick: () => undoLast() }, "Undo the last verdict") : null),
      h("p.muted.small", {}, h("a", { href: `/projects/${project.id}/`, "data-link": true }, "Back to the dashboard")));
    done.hidden = false;
    stage.dataset.queueDone = "true";
  }

  async function go(i) {
    if (i < 0) return;
    done.hidden = true;
    delete stage.dataset.queueDone;
    if (i >= items.length) {
      if (team()) await takeNext();
      else if (nextPage) await loadPage(nextPage);
      if (i >= items.length) {
        showDone();
        return;
      }
    }
    const started = performance.now();
    index = i;
    const url = new URL(location.href);
    url.searchParams.set("prediction", current().predictionId);
    history.replaceState({}, "", url);
    await showCurrent();
    if (current() && stage.dataset.ready === "true") timings.switches.push(performance.now() - started);
  }

  async function giveVerdict(verdict) {
    const item = current();
    if (!item) return;
    const text = comment.value.trim();
    item.verdict = verdict;
    item.comment = text;
    showVerdict(item);
    // Store first, then move on: a refused verdict must not look accepted.
    const previous = item.verdict;
    try {
      const saved = await api.review(item.predictionId, verdict, text);
      undoStack.push({ item, reviewId: saved.review.id });
      stage.dataset.lastVerdict = `${item.predictionId}:${verdict}`;
    } catch (e) {
      item.verdict = previous === verdict ? null : previous;
      showVerdict(item);
      toast(`Verdict not saved: ${e.message}`, "error");
      return;
    }
    showVerdict(item);
    if (current() === item && team()) go(index + 1); // asks the server for the next free image
    else if (current() === item && index < items.length - 1) go(index + 1);
    else if (current() === item && nextPage) go(index + 1);
    else if (current() === item) showDone();
  }

  const QUERIES = { "": {}, unreviewed: { reviewed: "false" }, flagged: { flagged: "true" }, reviewed: { reviewed: "true" }, frames: { order: "name" } };

  // The shared queue: several reviewers at once, each handed the next unreviewed image that no
  // one else holds (the server holds it for this reviewer until the verdict).
  const team = () => queueFilter.value === "team";

  async function takeNext() {
    const { prediction } = await api.reviewNext(project.id);
    if (prediction && !items.some((it) => it.predictionId === prediction.id)) items.push(queueItem(prediction));
    return Boolean(prediction);
  }

  async function restart() {
    items = [];
    nextPage = null;
    index = 0;
    empty.hidden = true;
    empty.replaceChildren();
    if (team()) await takeNext();
    else await loadPage(QUERIES[queueFilter.value]);
    if (items.length) await go(0);
    else {
      empty.hidden = false;
      empty.append(message("Nothing in this queue.", "info"));
      viewer.clear();
      delete stage.dataset.predictionId;
      pos.textContent = "0 / 0";
    }
  }

  async function loadPage(urlOrQuery) {
    const data = typeof urlOrQuery === "string" ? await api.pageAt(urlOrQuery) : await api.reviewQueue(project.id, urlOrQuery);
    nextPage = data.next;
    items.push(...data.results.map(queueItem));
  }

  function onKey(e) {
    if (!alive || isTyping(e)) return;
    if ((e.ctrlKey || e.metaKey) && !e.shiftKey && e.key.toLowerCase() === "z") {
      e.preventDefault();
      undoLast();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key.toLowerCase();
    const onSlider = e.target && e.target.type === "range";
    if (VERDICT_KEYS[k]) giveVerdict(VERDICT_KEYS[k]);
    else if (k === "j" || (k === "arrowright" && !onSlider)) go(index + 1);
    else if (k === "k" || (k === "arrowleft" && !onSlider)) go(index - 1);
    else if (k === "h") { showHeat.checked = !showHeat.checked; viewer.setOverlayStyle({ visible: showHeat.checked }); }
    else if (k === "c") classLayer.toggle();
    else if (k === "r") { showRegion.checked = !showRegion.checked; viewer.setRegion(viewer.region, showRegion.checked); }
    else if (k === "f" || k === "0") { viewer.fit(); viewer.draw(); }
    else if (k === "+" || k === "=") viewer.zoomBy(1.25);
    else if (k === "-") viewer.zoomBy(0.8);
    else return;
    e.preventDefault();
  }
  window.addEventListener("keydown", onKey);

  try {
    await loadPage({});
  } catch (e) {
    empty.hidden = false;
    empty.textContent = e.message;
  }
  if (!items.length) {
    empty.hidden = false;
    if (!empty.textContent) empty.append(message("Nothing to review: no predictions yet, or every flagged image has a verdict.", "info"));
  } else {
    const want = new URLSearchParams(location.search).get("prediction");
    let at = want ? items.findIndex((it) => String(it.predictionId) === want) : -1;
    if (want && at < 0) {
      // Opened from the image grid for an image further down the queue: show it first.
      try {
        items.unshift(queueItem(await api.prediction(want)));
        at = 0;
      } catch (e) {
        toast(`That prediction is not available: ${e.message}`, "error");
      }
    }
    await go(at >= 0 ? at : 0);
    viewer.canvases.shapes.focus({ preventScroll: true });
  }

  return () => {
    alive = false;
    window.removeEventListener("keydown", onKey);
    viewer.destroy();
    for (const p of cache.values()) p.then((d) => d.bitmap.close && d.bitmap.close()).catch(() => {});
  };
}

async function okBlob(res) {
  if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
  return res.blob();
}
