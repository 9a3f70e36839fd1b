// A threshold slider (with a number field) whose range spans the whole data range and the
// values it must reach, with the model's own value marked on the track. Used for the image
// and the region threshold on the model-version page and in review. `sliderRange` is pure.
import { h } from "./dom.js";
import { fmtThreshold } from "./metrics.js";

const STEPS = 1000;

/** {min, max, step} covering [lo, hi] and every value in `must` (finite ones), never empty. */
export function sliderRange(lo, hi, ...must) {
  const values = [lo, hi, ...must].filter((v) => typeof v === "number" && Number.isFinite(v));
  if (!values.length) return { min: 0, max: 1, step: 1 / STEPS };
  let min = Math.min(...values);
  let max = Math.max(...values);
  if (!(max > min)) {
    const pad = Math.abs(min) * 0.1 || 1;
    min -= pad;
    max += pad;
  }
  return { min, max, step: (max - min) / STEPS };
}

/** Where `value` sits on a track from min to max, in percent (clamped). */
export function markPercent(value, min, max) {
  if (!(max > min) || !Number.isFinite(value)) return 0;
  return Math.max(0, Math.min(100, ((value - min) / (max - min)) * 100));
}

/**
 * A labelled slider + number field. `oninput(value)` on every change; `.value` / `.set(value)`,
 * `.setRange(lo, hi, modelValue)` and `.reset()` (back to the model's value).
 */
export function thresholdControl({ id, label, lo, hi, value, modelValue, help, oninput = () => {} }) {
  const slider = h("input", { type: "range", id, "aria-describedby": `${id}-help` });
  const number = h("input", { type: "number", id: `${id}-value`, step: "any", "aria-label": `${label} value`, class: "threshold-number" });
  const mark = h("span.slider-mark", { "aria-hidden": "true", title: "the model's value" });
  const markLabel = h("span.slider-mark-label", { id: `${id}-model` });
  const reset = h("button", { type: "button", id: `${id}-reset`, class: "small" }, "Model value");
  const helpLine = h("div.muted.small", { id: `${id}-help` }, help || "");
  const node = h("div.threshold-control", { "data-threshold": id },
    h("div.row", {}, h("label", { for: id }, label), h("span.spacer"), number),
    h("div.slider-wrap", {}, slider, mark),
    h("div.row.small", {}, markLabel, h("span.spacer"), reset),
    helpLine);
  let model = modelValue;

  function show(v, fromNumber = false) {
    slider.value = String(v);
    if (!fromNumber) number.value = String(Number(Number(v).toPrecision(6)));
    node.dataset.value = String(v);
  }
  function setRange(newLo, newHi, newModel = model) {
    model = newModel;
    const r = sliderRange(newLo, newHi, model, control.value);
    slider.min = String(r.min);
    slider.max = String(r.max);
    slider.step = String(r.step);
    mark.style.left = `${markPercent(model, r.min, r.max)}%`;
    mark.hidden = !Number.isFinite(model);
    markLabel.textContent = Number.isFinite(model) ? `model: ${fmtThreshold(model)}` : "";
    node.dataset.min = String(r.min);
    node.dataset.max = String(r.max);
    node.dataset.model = String(model);
  }
  const control = {
    node,
    value,
    set(v) {
      control.value = Number(v);
      // A value outside the track (typed in) widens it, so the slider can always show it.
      if (control.value < Number(slider.min) || control.value > Number(slider.max)) setRange(Number(slider.min), Number(slider.max));
      show(control.value);
    },
    setRange,
    reset() {
      control.set(model);
      oninput(control.value);
    },
    get model() {
      return model;
    },
  };
  slider.addEventListener("input", () => {
    control.value = Number(slider.value);
    number.value = String(Number(control.value.toPrecision(6)));
    node.dataset.value = String(control.value);
    oninput(control.value);
  });
  number.addEventListener("input", () => {
    const v = Number(number.value);
    if (number.value === "" || !Number.isFinite(v)) return;
    control.value = v;
    if (v < Number(slider.min) || v > Number(slider.max)) setRange(Number(slider.min), Number(slider.max));
    show(v, true);
    oninput(v);
  });
  reset.addEventListener("click", () => control.reset());
  setRange(lo, hi, modelValue);
  show(value);
  return control;
}
