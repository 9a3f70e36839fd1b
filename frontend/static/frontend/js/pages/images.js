// Image browser: filters, a thumbnail grid with fixed-size frames (no layout jumps
// while thumbnails load) carrying the active model's score and flag, names shortened in
// the middle (full name on hover), a click that opens the image's review (inspectors) or
// its annotation (annotators, admins); drag-and-drop upload with progress and per-file
// errors, import and export for admins.
import { api } from "../api.js";
import { h, message, middleEllipsis } from "../dom.js";
import { fmtThreshold } from "../metrics.js";
import { can } from "../roles.js";
import { watchJob } from "./jobwatch.js";

const FILTERS = {
  split: ["", "train", "val", "test", "unassigned"],
  state: ["", "unlabeled", "normal", "anomalous"],
  annotated: ["", "true", "false"],
  flagged: ["", "true", "false"],
};
const BATCH = 16; // files per upload request: progress stays fine-grained and one bad file fails little

export async function render(root, { project, role, query }) {
  const page = h("section.page");
  root.append(page);
  const filters = Object.fromEntries(Object.keys(FILTERS).map((k) => [k, query.get(k) || ""]));
  const grid = h("div.grid", { id: "image-grid", "aria-live": "polite" });
  const count = h("span.muted", { id: "image-count" });
  const more = h("button", { type: "button", hidden: true, onclick: () => loadMore() }, "Load more");
  let nextUrl = null;

  const filterBar = h("form.filters", { role: "search", "aria-label": "Filter images", onsubmit: (e) => e.preventDefault() },
    Object.entries(FILTERS).map(([key, values]) => {
      const sel = h("select", { id: `filter-${key}`, name: key, onchange: () => {
        filters[key] = sel.value;
        const qs = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
        history.replaceState({}, "", `${location.pathname}${qs ? "?" + qs : ""}`);
        reload();
      } }, values.map((v) => h("option", { value: v, selected: v === filters[key] }, v === "" ? "any" : v)));
      return h("label", { for: `filter-${key}` }, key, sel);
    }),
    count);

  page.append(h("div.row", {}, h("h1", {}, "Images"), h("span.spacer")));
  if (can(role, "manage")) page.append(uploadPanel(project, () => reload()), transferPanel(project, () => reload(), query.get("import") === "1"));
  page.append(filterBar, grid, h("div.row", { style: "margin-top:12px" }, more));

  const annotate = can(role, "annotate");
  const review = can(role, "review");
  const cardHref = (img) => annotate
    ? `/projects/${project.id}/images/${img.id}/annotate/`
    : review && img.predictionId ? `/projects/${project.id}/review/?prediction=${img.predictionId}` : api.imageFileUrl(img.id);

  function card(img) {
    const href = cardHref(img);
    const internal = !href.startsWith("/api/");
    const corner = h("span.corner", {});
    const node = h("a.thumb", { href, "data-link": internal ? true : null, target: internal ? null : "_blank", "data-image-id": img.id, "aria-label": `${img.original_name}, ${img.split}, ${img.state}` },
      h("div.frame", {}, h("img", { src: api.thumbnailUrl(img.id), alt: "", loading: "lazy", width: 150, height: 150 }), corner),
      h("div.meta", {},
        h("span.name", { title: img.original_name }, middleEllipsis(img.original_name, 24)),
        h("span.row", {}, h("span.badge", {}, img.split), h("span.badge." + img.state, {}, img.state),
          img.annotated ? h("span.badge", {}, "annotated") : null)));
    if (img.score != null) decorate(node, img);
    return node;
  }

  /** The active model's score and flag on a card (and, for inspectors, its review as the link). */
  function decorate(node, prediction) {
    const corner = node.querySelector(".corner");
    corner.replaceChildren(...[
      h("span.badge.score-badge", { title: "anomaly score of the active model" }, fmtThreshold(prediction.score)),
      prediction.flagged ? h("span.badge.flagged", {}, "flagged") : null].filter(Boolean));
    node.dataset.score = prediction.score;
    if (prediction.flagged) node.dataset.flagged = "true";
    if (!annotate && review && prediction.predictionId) {
      node.setAttribute("href", `/projects/${project.id}/review/?prediction=${prediction.predictionId}`);
      node.setAttribute("data-link", "");
      node.removeAttribute("target");
    }
  }

  async function addScores(images) {
    const ids = images.filter((img) => img.score == null).map((img) => img.id);
    if (!ids.length) return;
    try {
      const data = await api.reviewQueue(project.id, { image_ids: ids.join(","), page_size: ids.length });
      for (const p of data.results) {
        const node = grid.querySelector(`.thumb[data-image-id="${p.image.id}"]`);
        if (node) decorate(node, { score: p.score, flagged: p.flagged, predictionId: p.id });
      }
    } catch {
      // Scores are a help, not the page: the grid stays usable without them.
    }
  }

  // "Flagged" is a property of the active model's predictions, so that filter reads the
  // review queue (which carries each image) and applies split/state to its pages here.
  async function flaggedPage(promise) {
    const data = await promise;
    const results = data.results
      .map((p) => ({ ...p.image, flagged: p.flagged, score: p.score, predictionId: p.id }))
      .filter((img) => (!filters.split || img.split === filters.split) && (!filters.state || img.state === filters.state));
    return { results, next: data.next, count: null };
  }

  async function show(pagePromise, append) {
    try {
      const data = await pagePromise;
      if (!append) grid.replaceChildren();
      grid.append(...data.results.map(card));
      addScores(data.results);
      nextUrl = data.next;
      more.hidden = !nextUrl;
      count.textContent = data.count != null ? `${data.count} images` : `${grid.querySelectorAll(".thumb").length} images shown (active model's predictions)`;
      if (!append && !data.results.length) grid.append(message("No image matches these filters.", "info"));
    } catch (e) {
      grid.replaceChildren(message(e.message, "error"));
    }
  }
  function reload() {
    if (filters.flagged) return show(flaggedPage(api.reviewQueue(project.id, { flagged: filters.flagged })), false);
    const q = Object.fromEntries(Object.entries(filters).filter(([k, v]) => v && k !== "flagged"));
    return show(api.images(project.id, q), false);
  }
  function loadMore() {
    if (nextUrl) show(filters.flagged ? flaggedPage(api.pageAt(nextUrl)) : api.pageAt(nextUrl), true);
  }
  await reload();
}

function uploadPanel(project, onDone) {
  const input = h("input", { type: "file", id: "upload-input", multiple: true, accept: "image/*,.zip", hidden: true });
  const bar = h("div", { style: "width:0%" });
  const progress = h("div.progress", { hidden: true, role: "progressbar", "aria-label": "Upload progress", "aria-valuemin": 0, "aria-valuemax": 100 }, bar);
  const status = h("div.upload-list", { id: "upload-status", "aria-live": "polite" });
  // What the uploaded images are for: normal train images are what unsupervised models learn from.
  const split = h("select", { id: "upload-split" }, FILTERS.split.slice(1).map((v) => h("option", { value: v, selected: v === "unassigned" }, v)));
  const state = h("select", { id: "upload-state" }, FILTERS.state.slice(1).map((v) => h("option", { value: v }, v)));
  const zone = h("div.dropzone", { id: "dropzone" },
    h("p", {}, "Drop images or a zip here, or ", h("button", { type: "button", onclick: () => input.click() }, "choose files"), ". ",
      h("label", { for: "upload-split" }, "Split", split), " ", h("label", { for: "upload-state" }, "State", state)),
    input, progress, status);
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    send([...e.dataTransfer.files]);
  });
  input.addEventListener("change", () => send([...input.files]));

  async function send(files) {
    if (!files.length) return;
    status.replaceChildren();
    progress.hidden = false;
    const totalBytes = files.reduce((a, f) => a + f.size, 0) || 1;
    let doneBytes = 0;
    let saved = 0;
    const errors = [];
    for (let i = 0; i < files.length; i += BATCH) {
      const batch = files.slice(i, i + BATCH);
      const batchBytes = batch.reduce((a, f) => a + f.size, 0);
      try {
        const res = await api.uploadImages(project.id, batch, { split: split.value, state: state.value }, (f) => {
          const pct = Math.round(((doneBytes + f * batchBytes) / totalBytes) * 100);
          bar.style.width = `${pct}%`;
          progress.setAttribute("aria-valuenow", pct);
        });
        saved += res.created.length;
        for (const d of res.duplicates || []) errors.push(`${d.file}: already in the project`);
      } catch (e) {
        const per = e.details && e.details.bad_files;
        if (Array.isArray(per)) for (const x of per) errors.push(`${x.file}: ${x.error}`);
        else errors.push(`${batch.map((f) => f.name).join(", ")}: ${e.message}`);
      }
      doneBytes += batchBytes;
    }
    bar.style.width = "100%";
    status.append(message(`${saved} image(s) saved${errors.length ? `, ${errors.length} not saved` : ""}.`, errors.length ? "error" : "success"));
    if (errors.length) status.append(h("ul", { id: "upload-errors" }, errors.map((e) => h("li", {}, e))));
    input.value = "";
    onDone();
  }
  return zone;
}

function transferPanel(project, onDone, open = false) {
  const file = h("input", { type: "file", id: "import-file", accept: ".zip,.json,.tar,.gz" });
  const format = h("select", { id: "import-format" }, ["mvtec", "coco", "via", "labelme"].map((f) => h("option", { value: f }, f)));
  const exportFormat = h("select", { id: "export-format" }, ["coco", "mvtec"].map((f) => h("option", { value: f }, f)));
  const out = h("div", { "aria-live": "polite" });
  return h("details.card", { style: "margin-bottom:12px", id: "import-export", open },
    h("summary", {}, "Import and export"),
    h("div.row", { style: "margin-top:8px" },
      h("label", { for: "import-file" }, "Archive"), file,
      h("label", { for: "import-format" }, "Format"), format,
      h("button", { type: "button", onclick: async () => {
        if (!file.files[0]) return out.replaceChildren(message("Choose an archive first.", "error"));
        try {
          const job = await api.startImport(project.id, file.files[0], format.value);
          out.replaceChildren(message(`Import job #${job.id} queued.`, "info"));
          watchJob(job.id, out, { onDone: onDone });
        } catch (e) {
          out.replaceChildren(message(e.message, "error"));
        }
      } }, "Import"),
      h("span.spacer"),
      h("label", { for: "export-format" }, "Export as"), exportFormat,
      h("button", { type: "button", id: "export-button", onclick: async () => {
        try {
          const job = await api.startExport(project.id, exportFormat.value);
          out.replaceChildren(message(`Export job #${job.id} queued.`, "info"));
          watchJob(job.id, out, { onDone: (j) => {
            if (j.status === "succeeded") out.append(h("a.button.primary", { id: "export-download", href: `/api/projects/${project.id}/exports/${j.id}/download`, download: "" }, "Download the export"));
          } });
        } catch (e) {
          out.replaceChildren(message(e.message, "error"));
        }
      } }, "Export")),
    out);
}
