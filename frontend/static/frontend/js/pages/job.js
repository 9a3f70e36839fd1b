// One job, live: status, stage, percent, ETA, the log as it grows, cancel.
// Polls once a second asking only for log lines it has not seen.
import { api } from "../api.js";
import { h, message, toast, fmtDate } from "../dom.js";
import { can } from "../roles.js";
import { jobSummary, TERMINAL } from "./jobwatch.js";
import { renderTrainingCharts, trainingFromHistory } from "../training_charts.js";

export async function render(root, { project, role, params }) {
  const page = h("section.page");
  root.append(page);
  const title = h("h1", {}, `Job #${params.jobId}`);
  const cancel = h("button.danger", { type: "button", id: "cancel-job", hidden: true, onclick: async () => {
    cancel.disabled = true;
    try {
      await api.cancelJob(params.jobId);
      toast("Cancel requested: the job stops at its next progress report.", "info");
    } catch (e) {
      toast(e.message, "error");
      cancel.disabled = false;
    }
  } }, "Cancel job");
  const summary = h("div.card", { id: "job-summary" });
  const meta = h("p.muted", { id: "job-meta" });
  const result = h("div", { id: "job-result" });
  const curves = h("div", { id: "job-training" });
  const log = h("pre.log", { id: "job-log", tabindex: 0, "aria-label": "Job log" });
  const back = h("a", { href: `/projects/${project.id}/jobs/`, "data-link": true }, "All jobs of this project");
  page.append(h("div.row", {}, title, h("span.spacer"), back, cancel), meta, summary, curves, result, h("h2", {}, "Log"), log);

  let logCount = 0;
  let timer = null;
  let alive = true;
  async function tick() {
    let job;
    try {
      job = await api.job(params.jobId, { logFrom: logCount });
    } catch (e) {
      summary.replaceChildren(message(e.message, "error"));
      if (alive) timer = setTimeout(tick, 3000);
      return;
    }
    title.textContent = `${job.kind[0].toUpperCase()}${job.kind.slice(1)} job #${job.id}`;
    meta.textContent = `${job.params?.pipeline ? job.params.pipeline + " · " : ""}requested by ${job.requested_by || "?"} · ${fmtDate(job.created_at)}${job.attempts > 1 ? ` · attempt ${job.attempts}` : ""}`;
    summary.replaceChildren(jobSummary(job));
    if (job.kind === "training") {
      // Live steps, loss and validation measure of the shared training loop.
      const live = renderTrainingCharts(trainingFromHistory(job.metrics_history), h, { title: "Live" });
      curves.replaceChildren(...(live ? [live] : []));
    }
    summary.dataset.status = job.status;
    summary.dataset.progress = job.progress;
    if (job.log && job.log.length) {
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(job.log.map((l) => (typeof l === "string" ? l : `${l.time ? l.time.slice(11, 19) + " " : ""}${l.message ?? JSON.stringify(l)}`)).join("\n") + "\n");
      logCount = job.log_count;
      if (stick) log.scrollTop = log.scrollHeight;
    }
    cancel.hidden = !can(role, "manage") || TERMINAL.includes(job.status);
    if (job.cancel_requested) cancel.disabled = true;
    if (TERMINAL.includes(job.status)) {
      // The summary says what the job did (jobResultMessage); here the way on from it.
      if (job.status === "succeeded" && job.model_version && ["training", "evaluation"].includes(job.kind)) {
        result.replaceChildren(h("p", {},
          h("a", { id: "job-model-link", href: `/projects/${project.id}/models/?version=${job.model_version}`, "data-link": true }, "See the model version's metrics and curves")));
      } else if (job.status === "succeeded" && job.kind === "inference") {
        result.replaceChildren(h("p", {}, h("a", { id: "job-review-link", href: `/projects/${project.id}/review/`, "data-link": true }, "Open the review queue")));
      } else if (job.status === "succeeded" && job.kind === "export") {
        result.replaceChildren(h("p", {}, h("a.button.primary", { href: `/api/projects/${project.id}/exports/${job.id}/download`, download: "" }, "Download the export")));
      }
      if (job.traceback) result.append(h("details", {}, h("summary", {}, "Traceback"), h("pre.log", {}, job.traceback)));
      return;
    }
    if (alive) timer = setTimeout(tick, 1000);
  }
  await tick();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
