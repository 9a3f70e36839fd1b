// Polls a job once a second and keeps a small progress block up to date.
import { api } from "../api.js";
import { h, fmtPercent, fmtDuration } from "../dom.js";

export const TERMINAL = ["succeeded", "failed", "cancelled"];

export function jobSummary(job) {
  const bar = h("div", { style: `width:${Math.round((job.progress || 0) * 100)}%` });
  return h("div.job-summary", {},
    h("div.row", {}, h("span.badge." + job.status, {}, job.status), h("span", {}, TERMINAL.includes(job.status) ? "" : job.stage || ""), h("span.spacer"),
      h("span", {}, fmtPercent(job.progress)), job.eta_seconds != null && !TERMINAL.includes(job.status) ? h("span.muted", {}, `ETA ${fmtDuration(job.eta_seconds)}`) : null),
    h("div.progress", { role: "progressbar", "aria-valuenow": Math.round((job.progress || 0) * 100), "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": "Job progress" }, bar),
    job.error ? h("p.msg.msg-error", {}, job.error) : null);
}

export function watchJob(id, container, { onDone, interval = 1000 } = {}) {
  let stopped = false;
  async function tick() {
    if (stopped) return;
    try {
      const job = await api.job(id);
      container.replaceChildren(jobSummary(job));
      if (TERMINAL.includes(job.status)) {
        onDone && onDone(job);
        return;
      }
    } catch (e) {
      container.replaceChildren(h("p.msg.msg-error", {}, e.message));
    }
    setTimeout(tick, interval);
  }
  tick();
  return () => (stopped = true);
}
