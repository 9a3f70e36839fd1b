// Parts of the model-version page about taking a model further: the per-defect-kind
// table (recall and AU-PRO per kind) and the download of the model file.
import { api } from "../api.js";
import { h } from "../dom.js";

// Fixed decimals for every row (1 reads as 1.00 next to 0.33), "–" where undefined.
const fixed = (x, digits) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–");

/** Recall and AU-PRO per defect kind when the version has them (null otherwise). */
export function perKindTable(v) {
  const perKind = v.metrics && v.metrics.per_kind;
  if (!perKind || !Object.keys(perKind).length) return null;
  const kinds = Object.keys(perKind).sort();
  return h("div.card", { id: "per-kind", style: "margin-top:12px" },
    h("h3", { style: "margin-top:0" }, `Per defect kind (v${v.number})`),
    h("table", { style: "width:auto;min-width:60%" },
      h("caption", { class: "muted", style: "text-align:left;padding:4px 0" }, "Each kind against the normal test images; recall = images of that kind flagged at the threshold."),
      h("thead", {}, h("tr", {}, h("th", {}, "Kind"), h("th.num", {}, "Images"), h("th.num", {}, "Recall"), h("th.num", {}, "Pixel recall"), h("th.num", {}, "AU-PRO"), h("th.num", {}, "Image AUROC"))),
      h("tbody", {}, kinds.map((k) => {
        const m = perKind[k];
        return h("tr", { "data-kind": k }, h("th", { scope: "row" }, k), h("td.num", {}, m.images),
          h("td.num", {}, fixed(m.image_recall, 2)), h("td.num", {}, fixed(m.pixel_recall, 2)),
          h("td.num", {}, fixed(m.aupro, 3)), h("td.num", {}, fixed(m.image_auroc, 3)));
      }))));
}

/** The model file itself, for `python -m ml predict|export --model FILE` outside the app. */
export function artifactLink(v) {
  return h("a.button", { id: "download-model", href: api.modelArtifactUrl(v.id), download: "", title: "Model file (PyTorch); export it to ONNX or TorchScript with python -m ml export" }, "Download model");
}
