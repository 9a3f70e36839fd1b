// Model versions (admins): metrics side by side under their human names, the better value of
// each in bold (higher or lower, as the metric says), a note when versions were measured on
// different images (with a job that evaluates an older version on the current test split);
// then for the chosen version its ROC and PR curves, the score histogram with the image
// threshold, both thresholds (image: which images are flagged; region: which pixels are
// outlined) on sliders that span the whole range with the model's value marked, activate /
// roll back, and batch inference.
import { api } from "../api.js";
import { h, message, toast, fmtDate } from "../dom.js";
import { renderCurves, renderHistogram } from "../charts.js";
import { bestOf, comparison, comparisonNote, fmtMetric, fmtThreshold, metricLabel, trainImages } from "../metrics.js";
import { thresholdControl } from "../threshold_control.js";
import { renderTrainingCharts } from "../training_charts.js";
import { watchJob } from "./jobwatch.js";
import { artifactLink, perKindTable } from "./model_extras.js";
import { roadSceneMetrics } from "./models_road.js";

const PREFERRED = [
  "image_auroc", "image_auroc_low", "image_auroc_high", "image_aupr", "image_f1_max", "image_fpr_at_95_tpr", "pixel_auroc", "aupro", "pixel_aupr", "pixel_f1_max",
  // The thesis' per-image means (eq. 5.1, 5.2, 5.5, 5.6) beside ours.
  "mean_accuracy", "mean_dice", "mean_iou", "mean_auroc",
  "image_accuracy", "image_recall", "image_false_positive_rate", "pixel_precision", "pixel_recall", "pixel_iou", "pixel_dice",
  "images", "normal_images", "anomalous_images",
];
const HIDDEN = new Set(["threshold", "region_threshold"]); // shown in their own rows

/** Metric names to show as rows: the usual ones first, then any other number any version has. */
export function metricRows(versions) {
  const seen = new Set();
  for (const v of versions) for (const [k, x] of Object.entries(v.metrics || {})) if ((typeof x === "number" || x === null) && !HIDDEN.has(k)) seen.add(k);
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
  let catalogue = {};
  let selected = query.get("version") ? Number(query.get("version")) : null;
  try {
    catalogue = await api.metricCatalogue();
  } catch (e) {
    toast(`Metric names unavailable: ${e.message}`, "error");
  }

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

  async function evaluate(v, button) {
    button.disabled = true;
    try {
      const job = await api.evaluateModel(v.id);
      toast(`Evaluating v${v.number} on the current test split (job #${job.id}).`, "info");
      const box = tableBox.querySelector("#evaluation-jobs");
      const line = h("div");
      box.append(line);
      watchJob(job.id, line, { onDone: (j) => { if (j.status === "succeeded") load(); } });
    } catch (e) {
      toast(e.message, "error");
      button.disabled = false;
    }
  }

  function drawTable() {
    const rows = metricRows(versions);
    const shown = versions.slice(0, 8); // newest first; side by side stays readable
    const note = comparisonNote(shown);
    const { stale } = comparison(shown);
    const direction = (k) => (catalogue[k]?.better === "higher" ? " ↑" : catalogue[k]?.better === "lower" ? " ↓" : "");
    const cell = (v, k) => {
      const best = bestOf(shown, k, catalogue) === v.id;
      return h(`td.num${best ? ".best" : ""}`, { title: best ? `best: ${catalogue[k].better} is better` : null }, fmtMetric(k, v.metrics?.[k]));
    };
    const evaluatedOn = (v) => {
      const e = v.evaluation || {};
      const stamp = !e.key ? "set not recorded" : e.source === "training" ? "at training" : `re-evaluated ${fmtDate(e.at)}`;
      return h("td.num", { "data-evaluation-key": e.key || "" },
        e.key ? `${e.count} images` : "–", h("div.muted.small", {}, stamp),
        e.is_current === false
          ? h("div", {}, h("span.badge.warn", { title: "not the images a training would evaluate on now" }, "older split"), " ",
              h("button.small", { type: "button", "data-evaluate": v.id, onclick: (ev) => evaluate(v, ev.currentTarget) }, "Evaluate on current test split"))
          : h("div", {}, h("span.badge", {}, "current split")));
    };
    tableBox.replaceChildren(...[
      note ? h("p.msg.msg-warn", { id: "comparison-note", role: "status" }, note) : null,
      h("div", { id: "evaluation-jobs", "aria-live": "polite" }),
      h("div", { style: "overflow-x:auto" }, h("table", { id: "versions-table", "data-stale": stale.join(",") },
        h("caption", { class: "muted", style: "text-align:left;padding:4px 0" },
          "Metrics on each version's evaluation images, at its thresholds; bold marks the better value (↑ higher is better, ↓ lower). Choose a column to see its curves."),
        h("thead", {}, h("tr", {}, h("th", {}, "Version"), shown.map((v) => h("th.num", { "data-version": v.id },
          h("button.link", { type: "button", style: "color:var(--accent)", "aria-pressed": String(v.id === selected), onclick: () => { selected = v.id; drawTable(); drawDetail(); } }, `v${v.number}`),
          v.is_active ? h("span.badge.active", { style: "margin-left:4px" }, "active") : null)))),
        h("tbody", {},
          h("tr", {}, h("th", {}, "Pipeline"), shown.map((v) => h("td.num", {}, v.pipeline))),
          h("tr", {}, h("th", {}, "Created"), shown.map((v) => h("td.num", {}, fmtDate(v.created_at)))),
          h("tr", { id: "row-image-threshold" }, h("th", {}, "Image threshold", h("div.muted.small", {}, "flags an image")),
            shown.map((v) => h("td.num", { title: v.threshold_policy || "" }, fmtThreshold(v.threshold)))),
          h("tr", { id: "row-region-threshold" }, h("th", {}, "Region threshold", h("div.muted.small", {}, "outlines pixels")),
            shown.map((v) => h("td.num", { title: v.region_threshold_policy || "" }, fmtThreshold(v.region_threshold)))),
          h("tr", { id: "row-train-images" }, h("th", {}, "Training images"), shown.map((v) => h("td.num", {}, trainImages(v) ?? "–"))),
          h("tr", { id: "row-evaluated-on" }, h("th", {}, "Evaluated on"), shown.map(evaluatedOn)),
          rows.map((k) => h("tr", { "data-metric": k }, h("th", { title: k }, metricLabel(k, catalogue), direction(k)), shown.map((v) => cell(v, k)))))))].filter(Boolean));
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

    // Image threshold over the image scores; region threshold over every map value seen.
    const imageLo = hist ? hist.edges[0] : v.threshold;
    const imageHi = hist ? hist.edges[hist.edges.length - 1] : v.threshold;
    const range = curves.map_range || {};
    const imageControl = thresholdControl({
      id: "threshold-slider", label: "Image threshold", lo: imageLo, hi: imageHi, value: v.threshold, modelValue: v.threshold,
      help: `An image whose score is above it is flagged for review. ${v.threshold_policy ? "Chosen: " + v.threshold_policy + "." : ""}`,
      oninput: (t) => drawCharts(t),
    });
    const regionControl = thresholdControl({
      id: "region-threshold-slider", label: "Region threshold", lo: range.min ?? v.region_threshold, hi: range.max ?? v.region_threshold,
      value: v.region_threshold, modelValue: v.region_threshold,
      help: `Heatmap pixels above it are outlined as the predicted region. ${v.region_threshold_policy ? "Chosen: " + v.region_threshold_policy + "." : ""}`,
    });
    const apply = h("button.primary", { type: "button", id: "threshold-apply", onclick: async () => {
      const body = {};
      if (imageControl.value !== v.threshold) body.threshold = imageControl.value;
      if (regionControl.value !== v.region_threshold) body.region_threshold = regionControl.value;
      if (!Object.keys(body).length) return toast("Both thresholds are as stored.", "info");
      apply.disabled = true;
      try {
        await api.setThresholds(v.id, body);
        toast(`Thresholds of v${v.number} set: its predictions are re-flagged${"region_threshold" in body ? "; a job redraws their regions" : ""}.`, "success");
        await load();
      } catch (e) {
        toast(e.message, "error");
      } finally {
        apply.disabled = false;
      }
    } }, "Apply thresholds");
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

    // Parts a version lacks (road-scene metrics, per-kind table, training curves) are null: left
    // out, as replaceChildren would show them as the word "null".
    detail.replaceChildren(...[
      h("h2", {}, `v${v.number} · ${v.pipeline}`, v.is_active ? h("span.badge.active", { style: "margin-left:8px" }, "active") : null),
      h("p.muted", {}, `Created ${fmtDate(v.created_at)} by ${v.created_by || "?"}${v.activated_at ? ` · activated ${fmtDate(v.activated_at)}` : ""}${v.job ? " · " : ""}`,
        v.job ? h("a", { href: `/projects/${project.id}/jobs/${v.job}/`, "data-link": true }, `training job #${v.job}`) : null),
      chartsBox,
      v.metrics?.class_iou ? roadSceneMetrics(v, await api.labelClasses(project.id)) : null,
      h("div.card.thresholds", { id: "thresholds" },
        h("div.threshold-pair", {}, imageControl.node, regionControl.node),
        h("div.row", { style: "margin-top:10px" }, apply, h("span.muted.small", {}, "Metrics at a threshold were computed at the model's values; evaluate again after a change."),
          h("span.spacer"), h("button", { type: "button", id: "evaluate-current", onclick: (ev) => evaluate(v, ev.currentTarget) }, "Evaluate on current test split"), infer, artifactLink(v), activate)),
      perKindTable(v),
      jobBox,
      renderTrainingCharts(v.training, h, { title: `v${v.number}` }),
      h("details", {}, h("summary", {}, `Configuration (preset ${v.preset || "default"})`), h("pre.log", { style: "height:auto;max-height:240px" }, JSON.stringify(v.config, null, 2))),
    ].filter(Boolean));
  }

  await load();
}
