// Training (admins): pipeline picker with a form generated from the pipeline's
// config schema, launch, recent training jobs, the retraining policy.
import { api } from "../api.js";
import { h, message, toast, fmtPercent, fmtDate, fmtDuration } from "../dom.js";
import { buildSchemaForm, errorKey } from "../schema_form.js";
import { jobDuration, jobStageText } from "./jobwatch.js";

// The README's default: strong, and fast to fit on a CPU.
export const DEFAULT_PIPELINE = "patchcore";
// Rough fit seconds with the default config on a 2-core CPU. PatchCore grows with the training
// set (README benchmark: 85 s for 700 images at 256 px). Pipelines on the shared training loop
// run a budget of steps whatever the set's size: DFR's 8000 steps about 2 x the 135 s its former
// 4200-step recipe took; the U-Net's 800 steps at about 2 s each, usually fewer (validation
// stops it). A GPU is much faster.
const SECONDS_PER_IMAGE = { patchcore: 0.12 };
const BUDGET_SECONDS = { dfr: 270, unet: 1600 };

/**
 * "about 2 min" style estimate for `pipeline` on `trainImages` images: the median of this
 * project's finished trainings of it when there are any, else the rough per-image figure.
 */
export function roughDuration(pipeline, trainImages, pastJobs = []) {
  const past = pastJobs
    .filter((j) => j.status === "succeeded" && j.params?.pipeline === pipeline)
    .map((j) => jobDuration(j))
    .filter((s) => s != null)
    .sort((a, b) => a - b);
  if (past.length) return `about ${fmtDuration(past[Math.floor(past.length / 2)])} (median of ${past.length} earlier training${past.length === 1 ? "" : "s"} here)`;
  if (BUDGET_SECONDS[pipeline] != null) {
    return `up to roughly ${fmtDuration(BUDGET_SECONDS[pipeline])} on a 2-core CPU (a budget of steps; validation may stop it earlier)`;
  }
  const rate = SECONDS_PER_IMAGE[pipeline];
  if (rate == null) return "no estimate yet";
  if (!trainImages) return "no training images yet";
  return `roughly ${fmtDuration(Math.max(5, rate * trainImages))} on a 2-core CPU for ${trainImages} training images (less on a GPU)`;
}

export async function render(root, { project, navigate }) {
  const page = h("section.page");
  root.append(page);
  page.append(h("div.row", {}, h("h1", {}, "Training"), h("span.spacer"), h("a.button", { href: `/projects/${project.id}/models/`, "data-link": true }, "Model versions")));
  const [pipelines, jobsPage, masked, versions, stats] = await Promise.all([
    api.pipelines(), api.trainingJobs(project.id).catch(() => []),
    api.images(project.id, { split: "train", state: "anomalous", annotated: "true", page_size: 1 }).catch(() => null),
    api.modelVersions(project.id).catch(() => []),
    api.stats(project.id).catch(() => ({})),
  ]);
  const counts = (stats && stats.counts && stats.counts.train) || {};
  // Supervised pipelines (unet, multilevel) learn from masks: without annotated anomalous
  // train images they are listed but not offered, and the form says why.
  const hasMasks = !masked || masked.count > 0;
  const vaeVersions = versions.filter((v) => v.pipeline === "vae");

  // --- launch form ---
  const offered = (p) => p.supervision !== "supervised" || hasMasks;
  const preselected = pipelines.some((p) => p.name === DEFAULT_PIPELINE && offered(p)) ? DEFAULT_PIPELINE : pipelines.find(offered)?.name;
  const pipelineSelect = h("select", { id: "pipeline" }, pipelines.map((p) => {
    const locked = !offered(p);
    return h("option", { value: p.name, disabled: locked, selected: p.name === preselected },
      `${p.name} (${p.supervision}${locked ? ", needs annotated images" : ""})${p.name === DEFAULT_PIPELINE ? " · default" : ""}`);
  }));
  if (preselected) pipelineSelect.value = preselected;
  const supervisedNote = hasMasks ? null : h("p.muted", { id: "supervised-note" },
    "Supervised pipelines learn from anomaly masks: annotate some anomalous images of the train split to train them.");
  const description = h("p.muted", { id: "pipeline-description" });
  const duration = h("p", { id: "pipeline-duration", class: "small" });
  // The residual input of a unet (thesis 4.1.1) comes from one of this project's vae model versions.
  const vaeSelect = h("select", { id: "vae-model-version" }, [h("option", { value: "" }, vaeVersions.length ? "none" : "no vae model version yet: train a vae first"),
    ...vaeVersions.map((v) => h("option", { value: String(v.id) }, `version ${v.number} (vae)`))]);
  const vaeField = h("label.field", { for: "vae-model-version", hidden: true }, h("span", {}, "Residual from vae model version"), vaeSelect);
  // Presets (default / paper / fast) come before the detailed fields: choosing one refills them.
  const presetSelect = h("select", { id: "preset" });
  const presetDescription = h("p.muted", { id: "preset-description" });
  const fieldsBox = h("div.config-grid", { id: "config-fields" });
  const activate = h("input", { type: "checkbox", id: "activate-when-done" });
  const formError = h("div", { "aria-live": "assertive" });
  const launch = h("button.primary", { type: "submit", id: "launch" }, "Launch training");
  let form = null;
  const showPreset = () => {
    const p = pipelines.find((x) => x.name === pipelineSelect.value);
    const presets = (p && p.presets) || {};
    const preset = presets[presetSelect.value] || { description: "", config: {} };
    presetDescription.textContent = preset.description || "";
    fieldsBox.replaceChildren();
    formError.replaceChildren();
    const schema = schemaWithPreset(p ? p.config_schema || { properties: {} } : { properties: {} }, preset.config);
    // vae_model is a file path for the command line; here a model version is chosen instead.
    vaeField.hidden = !(p && "vae_model" in schema.properties);
    delete schema.properties.vae_model;
    form = p ? buildSchemaForm(fieldsBox, schema, { h, idPrefix: "cfg" }) : null;
  };
  const showPipeline = () => {
    const p = pipelines.find((x) => x.name === pipelineSelect.value);
    description.textContent = p ? p.description : "";
    const trainImages = p ? (counts.normal || 0) + (p.supervision === "supervised" ? counts.anomalous || 0 : 0) : 0;
    duration.textContent = p ? `Duration: ${roughDuration(p.name, trainImages, Array.isArray(jobsPage) ? jobsPage : [])}.` : "";
    presetSelect.replaceChildren(...Object.keys((p && p.presets) || { default: {} }).map((name) => h("option", { value: name }, name)));
    showPreset();
  };
  pipelineSelect.addEventListener("change", showPipeline);
  presetSelect.addEventListener("change", showPreset);
  // novalidate: our own messages appear at the field, like the server's do.
  const launchForm = h("form.card", { id: "training-form", novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    if (!form) return;
    form.clearErrors();
    formError.replaceChildren();
    const config = form.read();
    if (!config) return;
    launch.disabled = true;
    try {
      const extra = !vaeField.hidden && vaeSelect.value ? { vae_model_version: Number(vaeSelect.value) } : {};
      const job = await api.startTraining(project.id, pipelineSelect.value, config, activate.checked, presetSelect.value || null, extra);
      toast(`Training job #${job.id} queued.`, "success");
      navigate(`/projects/${project.id}/jobs/${job.id}/`);
    } catch (err) {
      const key = errorKey(err);
      if (!(key && form.showError(key, err.message.replace(/^config\.[\w.]+:\s*/, "")))) formError.replaceChildren(message(err.message, "error"));
    } finally {
      launch.disabled = false;
    }
  } },
    h("h2", {}, "New training"),
    h("label.field", { for: "pipeline" }, h("span", {}, "Pipeline"), pipelineSelect),
    supervisedNote,
    description,
    duration,
    h("label.field", { for: "preset" }, h("span", {}, "Preset"), presetSelect),
    presetDescription,
    h("details", { open: true }, h("summary", {}, "Configuration (defaults filled in)"), fieldsBox),
    vaeField,
    h("label", { for: "activate-when-done" }, activate, "Activate the model when training succeeds"),
    formError,
    h("div.row", { style: "margin-top:10px" }, launch));
  showPipeline();

  // --- recent jobs ---
  const jobs = Array.isArray(jobsPage) ? jobsPage : [];
  const jobsTable = jobs.length
    ? h("table", { id: "training-jobs" },
        h("thead", {}, h("tr", {}, ["Job", "Pipeline", "Status", "Stage", "Progress", "Model", "Requested", "By"].map((c) => h("th", {}, c)))),
        h("tbody", {}, jobs.slice(0, 20).map((j) => h("tr", {},
          h("td", {}, h("a", { href: `/projects/${project.id}/jobs/${j.id}/`, "data-link": true }, `#${j.id}`)),
          h("td", {}, j.params?.pipeline || ""),
          h("td", {}, h("span.badge." + j.status, {}, j.status)),
          h("td", {}, jobStageText(j)),
          h("td.num", {}, fmtPercent(j.progress)),
          h("td", {}, j.model_version ? h("a", { href: `/projects/${project.id}/models/?version=${j.model_version}`, "data-link": true }, "view") : ""),
          h("td", {}, fmtDate(j.created_at)),
          h("td", {}, j.requested_by || "")))))
    : h("p.muted", {}, "No training yet.");

  page.append(launchForm, h("div.training-cols", {}, h("div", {}, h("h2", {}, "Training jobs"), jobsTable), await policyForm(project)));
}

async function policyForm(project) {
  const box = h("form.card", { id: "retrain-policy" }, h("h2", {}, "Automatic retraining"));
  let policy;
  try {
    policy = await api.retrainPolicy(project.id);
  } catch (e) {
    box.append(message(e.message, "error"));
    return box;
  }
  const enabled = h("input", { type: "checkbox", id: "policy-enabled", checked: policy.enabled });
  const minNew = h("input", { type: "number", id: "policy-min-new", min: 1, step: 1, value: policy.min_new_labels });
  const cooldown = h("input", { type: "number", id: "policy-cooldown", min: 0, step: 1, value: policy.cooldown_minutes });
  const autoActivate = h("input", { type: "checkbox", id: "policy-auto-activate", checked: policy.auto_activate });
  const out = h("div", { "aria-live": "polite" });
  box.append(
    h("p.muted", {}, "Retrains with the active model's pipeline and config after enough new verdicts or annotations. ",
      `${policy.new_labels_since_last_training ?? 0} new since the last training; last automatic training ${fmtDate(policy.last_triggered_at)}.`),
    h("label", { for: "policy-enabled" }, enabled, "Retrain automatically"),
    h("label.field", { for: "policy-min-new" }, h("span", {}, "After this many new verdicts or annotations"), minNew),
    h("label.field", { for: "policy-cooldown" }, h("span", {}, "At most once every (minutes)"), cooldown),
    h("label", { for: "policy-auto-activate" }, autoActivate, "Activate the new model automatically"),
    out,
    h("div.row", { style: "margin-top:8px" }, h("button", { type: "submit" }, "Save policy")));
  box.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api.saveRetrainPolicy(project.id, { enabled: enabled.checked, min_new_labels: Number(minNew.value), cooldown_minutes: Number(cooldown.value), auto_activate: autoActivate.checked });
      out.replaceChildren(message("Policy saved.", "success"));
    } catch (err) {
      out.replaceChildren(message(err.message, "error"));
    }
  });
  return box;
}

/** The schema with a preset's values as the fields' defaults (the form shows what will be sent). */
export function schemaWithPreset(schema, presetConfig) {
  const properties = {};
  for (const [key, prop] of Object.entries(schema.properties || {})) {
    properties[key] = key in (presetConfig || {}) ? { ...prop, default: presetConfig[key] } : prop;
  }
  return { ...schema, properties };
}
