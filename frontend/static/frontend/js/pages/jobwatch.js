// Jobs in words and a small live progress block. `jobResultMessage`, `jobStageText` and
// `jobDuration` are pure (tested in node); `watchJob` polls a job once a second.
import { api } from "../api.js";
import { h, fmtPercent, fmtDuration } from "../dom.js";

export const TERMINAL = ["succeeded", "failed", "cancelled"];

const plural = (n, one, many = one + "s") => `${n} ${n === 1 ? one : many}`;

/** What a finished job did, in one sentence that fits its kind; "" while it runs. */
export function jobResultMessage(job) {
  if (!TERMINAL.includes(job.status)) return "";
  if (job.status === "cancelled") return "Cancelled: nothing was saved.";
  if (job.status === "failed") return job.error ? `Failed: ${job.error}` : "Failed.";
  const r = job.result || {};
  switch (job.kind) {
    case "import": {
      const parts = [`Imported ${plural(r.images_created ?? 0, "image")}`];
      parts.push(`${plural(r.annotated_images ?? 0, "annotated image")} with ${plural(r.polygons ?? 0, "polygon")}`);
      const refused = r.duplicates ?? 0;
      parts.push(refused ? `${plural(refused, "duplicate")} refused (already in the project)` : "nothing refused");
      return parts.join(", ") + ".";
    }
    case "export":
      return `Exported ${plural(r.images ?? 0, "image")} with ${plural(r.polygons ?? 0, "polygon")}` +
        (r.skipped_unlabeled ? `; ${r.skipped_unlabeled} unlabelled skipped` : "") + ".";
    case "inference":
      return `Predicted ${plural(r.predicted ?? 0, "image")}, ${r.flagged ?? 0} flagged for review.`;
    case "evaluation":
      return `Evaluated model v${r.number ?? "?"} on ${plural(r.images ?? 0, "image")} of the current test split; its metrics were replaced.`;
    case "training":
      return r.number != null ? `Model version v${r.number} created.` : "Training finished.";
    case "redraw":
      return r.superseded
        ? `Stopped after ${plural(r.redrawn ?? 0, "image")}: a later region threshold change redraws the regions.`
        : `Redrew the predicted regions of ${plural(r.redrawn ?? 0, "image")} at the region threshold.`;
    default:
      return "Finished.";
  }
}

/** The stage as a person reads it: the current stage while running, how it ended once finished. */
export function jobStageText(job) {
  if (job.status === "queued") return "waiting for a worker";
  if (job.status === "running") return job.stage || "starting";
  if (job.status === "succeeded") return "done";
  if (job.status === "failed") return job.stage && job.stage !== "done" ? `failed during ${job.stage}` : "failed";
  return job.stage && job.stage !== "done" && job.stage !== "starting" ? `cancelled during ${job.stage}` : "cancelled";
}

/** Seconds a job ran (until now while it runs); null before it started. */
export function jobDuration(job, now = Date.now()) {
  if (!job.started_at) return null;
  const end = job.finished_at ? Date.parse(job.finished_at) : now;
  return Math.max(0, (end - Date.parse(job.started_at)) / 1000);
}

export function jobSummary(job) {
  const done = TERMINAL.includes(job.status);
  const pct = Math.round((job.progress || 0) * 100);
  const bar = h("div", { style: `width:${pct}%` });
  return h("div.job-summary", {},
    h("div.row", {}, h("span.badge." + job.status, {}, job.status), h("span.job-stage", {}, jobStageText(job)), h("span.spacer"),
      h("span", {}, fmtPercent(job.progress)), job.eta_seconds != null && !done ? h("span.muted", {}, `ETA ${fmtDuration(job.eta_seconds)}`) : null),
    h("div.progress", { role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": "Job progress", "data-status": job.status }, bar),
    done ? h(`p.msg.msg-${job.status === "succeeded" ? "success" : job.status === "failed" ? "error" : "info"}.job-result`, {}, jobResultMessage(job)) : null);
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
