// Every job of a project (imports, exports, trainings, inferences, evaluations, region redraws), newest first:
// kind, status, who, when, how long, one progress bar, what it did. Filters by kind and status
// (kept in the URL); refreshes itself while a shown job is still queued or running.
import { api } from "../api.js";
import { h, message, fmtDate, fmtDuration } from "../dom.js";
import { TERMINAL, jobDuration, jobResultMessage, jobStageText } from "./jobwatch.js";

const KINDS = ["", "import", "export", "training", "inference", "evaluation", "redraw"];
const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled"];

export async function render(root, { project, query }) {
  const page = h("section.page");
  root.append(page);
  const filters = { kind: query.get("kind") || "", status: query.get("status") || "" };
  const select = (key, values) => {
    const node = h("select", { id: `jobs-${key}`, onchange: () => {
      filters[key] = node.value;
      const qs = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
      history.replaceState({}, "", `${location.pathname}${qs ? "?" + qs : ""}`);
      load();
    } }, values.map((v) => h("option", { value: v, selected: v === filters[key] }, v === "" ? "any" : v)));
    return h("label", { for: `jobs-${key}` }, key, node);
  };
  const count = h("span.muted", { id: "jobs-count" });
  const box = h("div", { id: "jobs" });
  const more = h("button", { type: "button", id: "jobs-more", hidden: true, onclick: () => next && show(api.pageAt(next), true) }, "Load more");
  page.append(
    h("div.row", {}, h("h1", {}, "Jobs"), h("span.spacer")),
    h("form.filters", { role: "search", "aria-label": "Filter jobs", onsubmit: (e) => e.preventDefault() }, select("kind", KINDS), select("status", STATUSES), count),
    box, h("div.row", { style: "margin-top:12px" }, more));

  let jobs = [];
  let next = null;
  let timer = null;
  let alive = true;

  function row(job) {
    const pct = Math.round((job.progress || 0) * 100);
    const seconds = jobDuration(job);
    return h("tr", { "data-job-id": job.id, "data-status": job.status },
      h("td", {}, h("a", { href: `/projects/${project.id}/jobs/${job.id}/`, "data-link": true }, `#${job.id}`)),
      h("td", {}, job.kind, job.params?.pipeline ? h("span.muted", {}, ` · ${job.params.pipeline}`) : null),
      h("td", {}, h("span.badge." + job.status, {}, job.status)),
      h("td.job-progress-cell", {},
        h("div.progress", { role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": `Progress of job ${job.id}`, "data-status": job.status },
          h("div", { style: `width:${pct}%` })),
        h("div.muted.small", {}, `${jobStageText(job)} · ${pct}%`)),
      h("td", {}, job.requested_by || "system"),
      h("td", {}, fmtDate(job.created_at)),
      h("td.num", {}, seconds == null ? "–" : fmtDuration(seconds)),
      h("td.job-result", {}, TERMINAL.includes(job.status) ? jobResultMessage(job) : ""));
  }

  function draw() {
    if (!jobs.length) {
      box.replaceChildren(message(filters.kind || filters.status ? "No job matches these filters." : "No job yet: imports, trainings and inferences appear here.", "info"));
      return;
    }
    box.replaceChildren(h("table", { id: "jobs-table" },
      h("thead", {}, h("tr", {}, ["Job", "Kind", "Status", "Progress", "Requested by", "When", "Duration", "Result"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, jobs.map(row))));
  }

  let latest = 0; // a filter change overtakes a slower earlier answer: only the newest is drawn
  async function show(promise, append) {
    const token = ++latest;
    try {
      const data = await promise;
      if (token !== latest) return;
      jobs = append ? [...jobs, ...data.results] : data.results;
      next = data.next;
      more.hidden = !next;
      count.textContent = `${data.count} job${data.count === 1 ? "" : "s"}`;
      draw();
    } catch (e) {
      if (token !== latest) return;
      box.replaceChildren(message(e.message, "error"));
    }
    clearTimeout(timer);
    if (alive && jobs.some((j) => !TERMINAL.includes(j.status))) timer = setTimeout(() => show(api.jobsPage(project.id, filters), false), 2000);
  }

  function load() {
    return show(api.jobsPage(project.id, filters), false);
  }
  await load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
