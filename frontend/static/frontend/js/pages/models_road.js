// The model-version page's road-scene section (semantic models): mIoU and the IoU of
// each known class (named and coloured by the project's label classes), and the anomaly
// AuPRC / FPR95 over unknown-object pixels with their precision-recall curve.
// Hooked into models.js: `roadSceneMetrics(version, labelClasses)` returns null for
// models without class metrics.

import { h, fmtNumber } from "../dom.js";
import { renderCurves } from "../charts.js";

export function roadSceneMetrics(v, labelClasses) {
  const m = v.metrics || {};
  if (!m.class_iou) return null;
  const byIndex = new Map((labelClasses || []).map((c) => [String(c.index), c]));
  const rows = Object.entries(m.class_iou).sort((a, b) => +a[0] - +b[0]).map(([index, iou]) => {
    const c = byIndex.get(index);
    return h("tr", { "data-class-index": index },
      h("td", {}, h("span", { style: `display:inline-block;width:10px;height:10px;margin-right:6px;background:${c ? c.color : "#999"}` }),
        c ? c.name : `class ${index}`),
      h("td.num", {}, iou === null ? "absent" : fmtNumber(iou)));
  });
  const pr = v.curves?.anomaly_pr;
  const curve = pr && Array.isArray(pr.recall) && pr.recall.length > 1
    ? renderCurves(`Anomaly pixels: precision-recall of v${v.number}`, "recall", "precision", [{ label: "anomaly pixels", xs: pr.recall, ys: pr.precision }])
    : h("p.muted", {}, "No anomaly PR curve: the evaluation scenes hold no pixels of an unknown class.");
  return h("section.card", { id: "road-metrics", style: "margin-top:12px" },
    h("h3", {}, "Road scene: segmentation and anomalies"),
    h("div.row", {},
      h("div", {}, h("div.muted", {}, "mIoU (known classes)"), h("div.score", { id: "metric-miou" }, fmtNumber(m.miou))),
      h("div", {}, h("div.muted", {}, "Anomaly AuPRC"), h("div.score", { id: "metric-auprc" }, m.anomaly_auprc == null ? "–" : fmtNumber(m.anomaly_auprc))),
      h("div", {}, h("div.muted", {}, "Anomaly FPR95"), h("div.score", { id: "metric-fpr95" }, m.anomaly_fpr95 == null ? "–" : fmtNumber(m.anomaly_fpr95)))),
    h("div.row", { style: "align-items:flex-start;gap:24px" },
      h("table.table", { id: "class-iou", style: "width:auto;min-width:220px" },
        h("thead", {}, h("tr", {}, h("th", {}, "Class"), h("th", {}, "IoU"))), h("tbody", {}, ...rows)),
      h("div.charts", { id: "anomaly-pr", style: "width:340px;flex:none" }, curve)));
}
