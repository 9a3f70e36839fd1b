// Training and validation curves of the shared training loop: on the job page
// while a training runs (from the job's metrics history) and on the model-version
// page afterwards (from the version's stored `training` report). The data
// shaping is pure (tested in node); `renderTrainingCharts` builds SVG elements.
import { CHART, curvePath, linearScale } from "./charts.js";

const SVG = "http://www.w3.org/2000/svg";

/** Human name of a validation measure key ("val_pixel_f1_max" -> "validation pixel F1-max"). */
export function measureName(key) {
  const names = { val_loss: "validation loss", val_pixel_f1_max: "validation pixel F1-max" };
  return names[key] || String(key || "validation").replace(/^val_/, "validation ").replace(/_/g, " ");
}

/**
 * A training report shaped like the model version's `training` field from a running
 * job's metrics history: the points of the "train" stage that carry a step.
 * Loss points are averaged in windows so the line stays readable.
 */
export function trainingFromHistory(history, { window = 10 } = {}) {
  const points = (history || []).filter((p) => p && p.stage === "train" && Number.isFinite(p.step));
  if (!points.length) return null;
  const measureKey = Object.keys(points[points.length - 1]).find((k) => k.startsWith("val_")) || null;
  const trainLoss = [];
  for (let i = 0; i < points.length; i += window) {
    const chunk = points.slice(i, i + window).filter((p) => Number.isFinite(p.loss));
    if (chunk.length) trainLoss.push([chunk[chunk.length - 1].step, chunk.reduce((a, p) => a + p.loss, 0) / chunk.length]);
  }
  const validation = [];
  if (measureKey) {
    let last = null;
    for (const p of points) {
      if (Number.isFinite(p[measureKey]) && p[measureKey] !== last) {
        validation.push([p.step, p[measureKey]]);
        last = p[measureKey];
      }
    }
  }
  const latest = points[points.length - 1];
  return {
    steps: latest.step, epochs: latest.epoch, measure: measureKey,
    curves: { train_loss: trainLoss, validation }, running: true,
  };
}

/** One line of text that says what the training did (or is doing). */
export function trainingSummary(t) {
  if (!t) return "";
  const parts = [`${t.steps} steps (${Number(t.epochs ?? 0).toFixed(1)} epochs)`];
  if (Number.isFinite(t.seconds)) parts.push(`${Math.round(t.seconds)} s`);
  if (t.stopped) parts.push(`stopped: ${t.stopped}`);
  if (t.best_value != null && t.best_step != null) parts.push(`best ${measureName(t.measure)} ${Number(t.best_value).toPrecision(4)} at step ${t.best_step} (weights restored)`);
  if (t.validation) parts.push(`validation images: ${t.validation === "none" ? "none (too few to hold back)" : t.validation}`);
  return parts.join(" · ");
}

/** [min, max] of values, widened when flat so a line still shows. */
export function domainOf(values) {
  const finite = values.filter(Number.isFinite);
  if (!finite.length) return [0, 1];
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (hi - lo < 1e-12) { lo -= 0.5; hi += 0.5; }
  return [lo, hi];
}

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

function lineChart(title, yLabel, pts, { xMax, markStep = null, className = "series-0" } = {}) {
  const svg = el("svg", { viewBox: `0 0 ${CHART.width} ${CHART.height}`, class: "chart", role: "img", "aria-label": title });
  svg.append(el("title", {}, title));
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const xDomain = [0, Math.max(xMax || 0, ...xs, 1)];
  const yDomain = domainOf(ys);
  const box = CHART;
  svg.append(el("rect", { x: box.left, y: box.top, width: box.width - box.left - box.right, height: box.height - box.top - box.bottom, class: "chart-bg" }));
  svg.append(el("path", { d: curvePath(xs, ys, { xDomain, yDomain }), class: `chart-line ${className}` }));
  const sx = linearScale(xDomain[0], xDomain[1], box.left, box.width - box.right);
  if (markStep != null) {
    svg.append(el("line", { x1: sx(markStep), x2: sx(markStep), y1: box.top, y2: box.height - box.bottom, class: "chart-threshold" }));
  }
  const fmt = (v) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : String(Math.round(v * 1000) / 1000));
  svg.append(el("text", { x: box.left - 4, y: box.top + 8, class: "chart-tick", "text-anchor": "end" }, fmt(yDomain[1])));
  svg.append(el("text", { x: box.left - 4, y: box.height - box.bottom, class: "chart-tick", "text-anchor": "end" }, fmt(yDomain[0])));
  svg.append(el("text", { x: box.width - box.right, y: box.height - box.bottom + 12, class: "chart-tick", "text-anchor": "end" }, String(xDomain[1])));
  svg.append(el("text", { x: (box.left + box.width - box.right) / 2, y: box.height - 4, class: "chart-label", "text-anchor": "middle" }, "step"));
  svg.append(el("text", { x: 10, y: (box.top + box.height - box.bottom) / 2, class: "chart-label", "text-anchor": "middle", transform: `rotate(-90 10 ${(box.top + box.height - box.bottom) / 2})` }, yLabel));
  return svg;
}

/** The charts (training loss, validation measure with the best step marked) and a summary line, or null. */
export function renderTrainingCharts(training, h, { title = "Training" } = {}) {
  if (!training || !training.curves) return null;
  const { train_loss: loss = [], validation = [] } = training.curves;
  if (!loss.length && !validation.length) return null;
  const charts = [];
  if (loss.length) charts.push(lineChart(`${title}: training loss by step`, "loss", loss, { xMax: training.steps }));
  if (validation.length) {
    charts.push(lineChart(`${title}: ${measureName(training.measure)} by step`, measureName(training.measure), validation,
      { xMax: training.steps, markStep: training.best_step ?? null, className: "series-1" }));
  }
  return h("div.training-charts", { id: "training-charts" }, h("p.muted", { id: "training-summary" }, trainingSummary(training)), h("div.charts", {}, charts));
}
