// Model versions (admins): metrics side by side, then for the chosen version its
// ROC and PR curves and the normal-vs-anomalous score histogram with the threshold
// marked, a threshold control, activate / roll back, and batch inference.
import { api } from "../api.js";
import { h, message, toast, fmtNumber, fmtDate } from "../dom.js";
import { renderCurves, renderHistogram } from "../charts.js";
import { renderTrainingCharts } from "../training_charts.js";
import { watchJob } from "./jobwatch.js";
import { artifactLink, perKindTable } from "./model_extras.js";
import { roadSceneMetrics } from "./models_road.js";

const PREFERRED = [
  "image_auroc", "image_aupr", "image_f1_max", "image_fpr_at_95_tpr", "pixel_auroc", "aupro", "pixel_aupr", "pixel_f1_max",
  // The thesis' per-image means (eq. 5.1, 5.2, 5.5, 5.6) beside ours.
  "mean_accuracy", "mean_dice", "mean_iou", "mean_auroc",
  "image_accuracy", "image_recall", "image_false_positive_rate", "pixel_iou", "pixel_dice", "images", "normal_images", "anomalous_images",
];

/** Metric names to show as rows: the usual ones first, then any other number any version has. */
export function metricRows(versions) {
  const seen = new Set();
  for (const v of versions) for (const [k, x] of Object.entries(v.metrics || {})) if ((typeof x === "number" || x === null) && k !== "threshold") seen.add(k);
  return [...PREFERRED.filter((k) => seen.has(k)), ...[...seen].filter((k) => !PREFERRED.includes(k)).sort()];
}

export async function render(root, { project, query }) {
  const page = h("section.page");
  root.append(page);
  page.append(h("div.row", {}, h("h1", {}, "Model versions"), h("span.spacer"), h("a.button", { href: `/projects/${project.id}/training/`, "data-link": true }, "Train a new model")));
  const tableBox = h("div", { id: "versions" });
  const detail = h("div", { id: "version-detail" });
  page.append(detail, h("h2", {}, "All versions side by side"), tableBox);
  let versions = [];
  let selected = query.get("version") ? Number(query.get("version")) : null;

  async function load() {
    versions = await api.modelVersions(project.id);
    if (!versions.length) {
      tableBox.replaceChildren(message("No model version yet: launch a training first.", "info"));
      detail.replaceChildren();
      return;
    }
    if (!versions.some((v) => v.id === selected)) selected = (versions.find((v) => v.is_active) || versions[0]).id;
    drawTable();
    await drawDetail();
  }

  function drawTable() {
    const rows = metricRows(versions);
    const shown = versions.slice(0, 8); // newest first; side by side stays readable
    tableBox.replaceChildren(h("div", { style: "overflow-x:auto" }, h("table", { id: "versions-table" },
      h("caption", { class: "muted", style: "text-align:left;padding:4px 0" }, "Metrics on each version's validation/test images; choose a column to see its curves."),
      h("thead", {}, h("tr", {}, h("th", {}, "Version"), shown.map((v) => h("th.num", { "data-version": v.id },
        h("button.link", { type: "button", style: "color:var(--accent)", "aria-pressed": String(v.id === selected), onclick: () => { selected = v.id; drawTable(); drawDetail(); } }, `v${v.number}`),
        v.is_active ? h("span.badge.active", { style: "margin-left:4px" }, "active") : null)))),
      h("tbody", {},
        h("tr", {}, h("th", {}, "pipeline"), shown.map((v) => h("td.num", {}, v.pipeline))),
        h("tr", {}, h("th", {}, "created"), shown.map((v) => h("td.num", {}, fmtDate(v.created_at)))),
        h("tr", {}, h("th", {}, "threshold"), shown.map((v) => h("td.num", {}, `${fmtNumber(v.threshold)}${v.threshold_policy ? ` (${v.threshold_policy})` : ""}`))),
        h("tr", {}, h("th", {}, "training images"), shown.map((v) => h("td.num", {}, v.snapshot ? v.snapshot.images : "–"))),
        rows.map((k) => h("tr", {}, h("th", {}, k.replace(/_/g, " ")), shown.map((v) => {
          const best = bestOf(shown, k);
          return h("td.num", { style: best === v.id ? "font-weight:600" : null }, fmtNumber(v.metrics?.[k]));
        })))))));
  }

  async function drawDetail() {
    const v = await api.modelVersion(selected);
    const curves = v.curves || {};
    const has = (c, k) => c && Array.isArray(c[k]) && c[k].length > 1;
    const series = (img, pix, xk, yk) => [
      ...(has(img, xk) ? [{ label: "image", xs: img[xk], ys: img[yk] }] : []),
      ...(has(pix, xk) ? [{ label: "pixel", xs: pix[xk], ys: pix[yk] }] : []),
    ];
    const roc = series(curves.image_roc, curves.pixel_roc, "fpr", "tpr");
    const pr = series(curves.image_pr, curves.pixel_pr, "recall", "precision");
    const hist = has(curves.image_histogram, "edges") ? curves.image_histogram : null;
    const chartsBox = h("div.charts", { id: "charts" });
    const none = (what) => h("div.card", {}, message(`No ${what}: the evaluation images need both normal and anomalous ones.`, "info"));
    const drawCharts = (threshold) => {
      chartsBox.replaceChildren(
        roc.length ? renderCurves(`ROC curves of v${v.number}`, "false positive rate", "true positive rate", roc, { diagonal: true }) : none("ROC curve"),
        pr.length ? renderCurves(`Precision-recall curves of v${v.number}`, "recall", "precision", pr) : none("PR curve"),
        hist ? renderHistogram(`Image scores of v${v.number}: normal vs anomalous`, hist, threshold) : none("score histogram"));
    };
    drawCharts(v.threshold);

    const lo = hist ? hist.edges[0] : Math.min(0, v.threshold);
    const hi = hist ? hist.edges[hist.edges.length - 1] : Math.max(1, v.threshold * 2);
    const slider = h("input", { type: "range", id: "threshold-slider", min: lo, max: hi, step: (hi - lo) / 500 || 0.001, value: v.threshold, "aria-label": "Threshold" });
    const number = h("input", { type: "number", id: "threshold-input", step: "any", value: Number(v.threshold.toPrecision(6)), style: "width:9em", "aria-label": "Threshold value" });
    slider.addEventListener("input", () => { number.value = Number(slider.value).toPrecision(6); drawCharts(Number(slider.value)); });
    number.addEventListener("input", () => { if (Number.isFinite(+number.value)) { slider.value = number.value; drawCharts(Number(number.value)); } });
    const apply = h("button", { type: "button", id: "threshold-apply", onclick: async () => {
      try {
        await api.setThreshold(v.id, Number(number.value));
        toast(`Threshold of v${v.number} set; its predictions are re-flagged.`, "success");
        await load();
      } catch (e) {
        toast(e.message, "error");
      }
    } }, "Apply threshold");
    const activate = h("button.primary", { type: "button", id: "activate", disabled: v.is_active, onclick: async () => {
      const active = versions.find((x) => x.is_active);
      const isRollback = active && active.number > v.number;
      if (isRollback && !confirm(`Roll back from v${active.number} to v${v.number}?`)) return;
      try {
        await api.activateModel(v.id);
        toast(`v${v.number} is now the active model.`, "success");
        await load();
      } catch (e) {
        toast(e.message, "error");
      }
    } }, v.is_active ? "Active" : versions.some((x) => x.is_active && x.number > v.number) ? "Roll back to this version" : "Activate");
    const jobBox = h("div", { "aria-live": "polite" });
    const infer = h("button", { type: "button", id: "run-inference", onclick: async () => {
      try {
        const job = await api.startInference(project.id, { model_version: v.id });
        watchJob(job.id, jobBox, { onDone: (j) => toast(`Inference #${j.id} ${j.status}.`, j.status === "succeeded" ? "success" : "error") });
      } catch (e) {
        toast(e.message, "error");
      }
    } }, "Predict all images");

    detail.replaceChildren(
      h("h2", {}, `v${v.number} · ${v.pipeline}`, v.is_active ? h("span.badge.active", { style: "margin-left:8px" }, "active") : null),
      h("p.muted", {}, `Created ${fmtDate(v.created_at)} by ${v.created_by || "?"}${v.activated_at ? ` · activated ${fmtDate(v.activated_at)}` : ""}${v.job ? " · " : ""}`,
        v.job ? h("a", { href: `/projects/${project.id}/jobs/${v.job}/`, "data-link": true }, `training job #${v.job}`) : null),
      chartsBox,
      v.metrics?.class_iou ? roadSceneMetrics(v, await api.labelClasses(project.id)) : null,
      h("div.card.row", { style: "margin-top:12px" },
        h("label", { for: "threshold-slider" }, "Threshold"), slider, number, apply, h("span.spacer"), infer, artifactLink(v), activate),
      perKindTable(v),
      jobBox,
      renderTrainingCharts(v.training, h, { title: `v${v.number}` }),
      h("details", {}, h("summary", {}, `Configuration (preset ${v.preset || "default"})`), h("pre.log", { style: "height:auto;max-height:240px" }, JSON.stringify(v.config, null, 2))));
  }

  await load();
}

/** Id of the version with the best value of a metric (lower is better only for error rates). */
function bestOf(versions, key) {
  const lowerBetter = /false_positive|error|loss/.test(key);
  let best = null;
  for (const v of versions) {
    const x = v.metrics?.[key];
    if (typeof x !== "number" || versions.length < 2 || /images$/.test(key)) continue;
    if (best === null || (lowerBetter ? x < best.x : x > best.x)) best = { id: v.id, x };
  }
  return best && best.id;
}
