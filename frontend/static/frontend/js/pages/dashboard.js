// Project dashboard: image counts by split and state, the active model and its key
// metrics, running jobs. Refreshes every few seconds while jobs run.
import { api } from "../api.js";
import { h, message, fmtPercent, fmtDuration, fmtDate, inlineCode } from "../dom.js";
import { can } from "../roles.js";
import { fmtMetric, fmtThreshold, metricLabel } from "../metrics.js";

const SPLITS = ["train", "val", "test", "unassigned"];
const STATES = ["unlabeled", "normal", "anomalous"];

/** stats.counts is {split: {state: n}}. */
function countsTable(stats) {
  const grid = stats.counts || {};
  const total = (s) => STATES.reduce((a, st) => a + (grid[s]?.[st] || 0), 0);
  return h("table", { id: "counts" },
    h("thead", {}, h("tr", {}, h("th", {}, "Split"), STATES.map((s) => h("th.num", {}, s)), h("th.num", {}, "total"))),
    h("tbody", {}, SPLITS.map((sp) => h("tr", {}, h("th", { scope: "row" }, sp), STATES.map((st) => h("td.num", {}, grid[sp]?.[st] ?? 0)), h("td.num", {}, total(sp))))),
  );
}

export function keyMetrics(metrics = {}) {
  const pick = ["image_auroc", "image_f1_max", "pixel_auroc", "aupro", "pixel_f1_max", "image_accuracy"];
  const keys = pick.filter((k) => metrics[k] != null);
  return keys.length ? keys : Object.keys(metrics).filter((k) => typeof metrics[k] === "number").slice(0, 6);
}

export async function render(root, { project, role }) {
  const page = h("section.page");
  root.append(page);
  page.append(h("div.row", {}, h("h1", {}, project.name), h("span.badge", {}, project.kind || ""), h("span.spacer"),
    h("a.button", { href: `/projects/${project.id}/jobs/`, "data-link": true }, "Jobs"),
    can(role, "review") ? h("a.button.primary", { href: `/projects/${project.id}/review/`, "data-link": true }, "Open review queue") : null,
    can(role, "annotate") ? h("a.button", { id: "images-to-annotate", href: `/projects/${project.id}/to-annotate/`, "data-link": true }, "Images to annotate") : null,
    can(role, "manage") ? h("a.button", { href: `/projects/${project.id}/training/`, "data-link": true }, "Train a model") : null));
  if (project.description) page.append(h("p.muted.project-description", {}, inlineCode(project.description)));
  const body = h("div");
  page.append(body);
  const catalogue = await api.metricCatalogue().catch(() => ({}));
  let timer = null;
  let alive = true;

  async function refresh() {
    let stats, versions, running, queued, backlog;
    try {
      // Counts from the projects API; model, jobs and backlog from the inspection API.
      [stats, versions, running, queued, backlog] = await Promise.all([
        api.stats(project.id),
        api.modelVersions(project.id),
        api.jobs(project.id, { status: "running" }),
        api.jobs(project.id, { status: "queued" }),
        api.reviewQueue(project.id, { flagged: "true", reviewed: "false" }),
      ]);
    } catch (e) {
      body.replaceChildren(message(e.message, "error"));
      return;
    }
    const active = versions.find((v) => v.is_active) || null;
    const jobs = [...running, ...queued];
    const kpi = (label, value, id) => h("div.card.kpi", { id }, h("div.value", {}, value), h("div.label", {}, label));
    const totals = stats.totals || {};
    if (!totals.images) {
      // Nothing to review or train on yet: say how images get in, for who can bring them.
      body.replaceChildren(h("div.card.empty-project", { id: "empty-project" },
        h("h2", {}, "This project has no images yet"),
        can(role, "manage")
          ? h("div", {},
              h("p", {}, "Upload photographs (normal ones to learn from, labelled ones to measure on) or import a dataset in MVTec, COCO, VIA or LabelMe format."),
              h("div.row", {},
                h("a.button.primary", { id: "empty-upload", href: `/projects/${project.id}/images/`, "data-link": true }, "Upload images"),
                h("a.button", { id: "empty-import", href: `/projects/${project.id}/images/?import=1`, "data-link": true }, "Import a dataset")))
          : h("p", {}, "An admin of this project uploads or imports images; they will appear here.")));
      if (alive) timer = setTimeout(refresh, 10000);
      return;
    }
    body.replaceChildren(
      h("div.kpis", {},
        kpi("images", totals.images ?? "–", "kpi-images"),
        kpi("annotated", totals.annotated ?? "–", "kpi-annotated"),
        kpi("flagged, not reviewed", backlog.count, "kpi-review"),
        kpi("active model", active ? `v${active.number} ${active.pipeline}` : "none", "kpi-model")),
      h("div.dash-cols", {},
        h("div", {}, h("h2", {}, "Images by split and state"), countsTable(stats)),
        h("div", {},
          h("h2", {}, "Active model"),
          active
            ? h("div.card", { id: "active-model" },
                h("p", {}, h("strong", {}, `v${active.number} · ${active.pipeline}`),
                  ` · image threshold ${fmtThreshold(active.threshold)} · region threshold ${fmtThreshold(active.region_threshold)} · activated ${fmtDate(active.activated_at)}`),
                h("table", {}, h("tbody", {}, keyMetrics(active.metrics).map((k) => h("tr", {}, h("th", {}, metricLabel(k, catalogue)), h("td.num", {}, fmtMetric(k, active.metrics[k])))))))
            : message("No active model yet." + (can(role, "manage") ? " Train one on the Training page." : ""), "info"),
          h("h2", {}, "Running jobs"),
          jobs.length
            ? h("table", { id: "running-jobs" }, h("tbody", {}, jobs.map((j) => h("tr", {},
                h("td", {}, h("a", { href: `/projects/${project.id}/jobs/${j.id}/`, "data-link": true }, `${j.kind} #${j.id}`)),
                h("td", {}, h("span.badge." + j.status, {}, j.status)),
                h("td", {}, j.stage || ""),
                h("td.num", {}, fmtPercent(j.progress)),
                h("td.num", {}, j.eta_seconds != null ? `ETA ${fmtDuration(j.eta_seconds)}` : "")))))
            : h("p.muted", {}, "No job is running."))),
    );
    if (alive) timer = setTimeout(refresh, jobs.length ? 2000 : 10000);
  }
  await refresh();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
