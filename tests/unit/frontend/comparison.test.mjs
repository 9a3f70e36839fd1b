// Model comparison, thresholds, jobs and names as the pages show them (pure functions, node --test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { bestOf, comparison, comparisonNote, fmtMetric, metricLabel, trainImages } from "../../../frontend/static/frontend/js/metrics.js";
import { markPercent, sliderRange } from "../../../frontend/static/frontend/js/threshold_control.js";
import { jobDuration, jobResultMessage, jobStageText } from "../../../frontend/static/frontend/js/pages/jobwatch.js";
import { middleEllipsis } from "../../../frontend/static/frontend/js/dom.js";
import { colouriseInto, colourLut, DEFAULT_COLOUR_MAP } from "../../../frontend/static/frontend/js/heatmap.js";
import { roughDuration } from "../../../frontend/static/frontend/js/pages/training.js";

const CATALOGUE = {
  image_auroc: { label: "Image AUROC", better: "higher" },
  image_fpr_at_95_tpr: { label: "Image FPR at 95% TPR", better: "lower" },
  images: { label: "Images with a label", better: null },
};

test("an error rate's lower value is the better one; AUROC's higher", () => {
  const versions = [
    { id: 1, metrics: { image_auroc: 0.91, image_fpr_at_95_tpr: 0.4, images: 15 } },
    { id: 2, metrics: { image_auroc: 0.99, image_fpr_at_95_tpr: 0, images: 13 } },
  ];
  assert.equal(bestOf(versions, "image_fpr_at_95_tpr", CATALOGUE), 2, "0 beats 0.400 (the issue bolded 0.400)");
  assert.equal(bestOf(versions, "image_auroc", CATALOGUE), 2);
  assert.equal(bestOf(versions, "images", CATALOGUE), null, "counts are not a contest");
  assert.equal(bestOf(versions, "unknown_metric", CATALOGUE), null, "no direction known: nothing bold");
  assert.equal(bestOf([versions[0]], "image_auroc", CATALOGUE), null, "one version: nothing to beat");
  const tie = [{ id: 1, metrics: { image_auroc: 0.9991 } }, { id: 2, metrics: { image_auroc: 0.9994 } }];
  assert.equal(bestOf(tie, "image_auroc", CATALOGUE), null, "equal at the shown rounding: no winner");
});

test("metrics have human names and one rounding rule", () => {
  assert.equal(metricLabel("image_auroc", CATALOGUE), "Image AUROC");
  assert.equal(metricLabel("pixel_iou", {}), "Pixel iou");
  assert.equal(fmtMetric("image_auroc", 1), "1.000");
  assert.equal(fmtMetric("image_auroc", 0.98765), "0.988");
  assert.equal(fmtMetric("anomalous_images", 9), "9");
  assert.equal(fmtMetric("threshold", 46.28437), "46.28");
  assert.equal(fmtMetric("pixel_aupr", null), "–");
});

test("versions measured on different images are called out, the same set is not", () => {
  const a = { id: 1, number: 1, evaluation: { key: "k1", count: 15, is_current: false }, snapshot: { train_images: 24, images: 39 } };
  const b = { id: 2, number: 2, evaluation: { key: "k2", count: 13, is_current: true }, snapshot: { train_images: 26, images: 39 } };
  const c = { id: 3, number: 3, evaluation: { key: "k2", count: 13, is_current: true } };
  assert.equal(comparison([b, c]).same, true);
  assert.equal(comparisonNote([b, c]), "");
  const mixed = comparison([c, b, a]);
  assert.equal(mixed.same, false);
  assert.deepEqual(mixed.stale, [1]);
  assert.deepEqual(mixed.groups.map((g) => [g.count, g.numbers]), [[13, [3, 2]], [15, [1]]]);
  const note = comparisonNote([c, b, a]);
  assert.match(note, /v3, v2 on 13 images; v1 on 15 images/);
  assert.equal(trainImages(a), 24, "the training-set size as it was, not the whole snapshot (39)");
});

test("a threshold slider spans the data and the model's value, which is marked on it", () => {
  // The issue: the slider stopped at 47.627 while the model's threshold was 46.284 (below the map's min).
  const r = sliderRange(47.627, 80.1, 46.284);
  assert.ok(r.min <= 46.284 && r.max >= 80.1);
  assert.equal(markPercent(46.284, r.min, r.max), 0);
  assert.equal(markPercent(80.1, r.min, r.max), 100);
  const flat = sliderRange(3, 3);
  assert.ok(flat.max > flat.min, "a flat map still gives a usable slider");
});

test("a finished job says what it did, in words of its kind", () => {
  assert.equal(
    jobResultMessage({ kind: "import", status: "succeeded", result: { images_created: 39, annotated_images: 9, polygons: 12, duplicates: 2 } }),
    "Imported 39 images, 9 annotated images with 12 polygons, 2 duplicates refused (already in the project).");
  assert.equal(jobResultMessage({ kind: "inference", status: "succeeded", result: { predicted: 39, flagged: 7 } }), "Predicted 39 images, 7 flagged for review.");
  assert.equal(jobResultMessage({ kind: "redraw", status: "succeeded", result: { redrawn: 12, superseded: false } }),
    "Redrew the predicted regions of 12 images at the region threshold.");
  assert.match(jobResultMessage({ kind: "redraw", status: "succeeded", result: { redrawn: 1, superseded: true } }), /^Stopped after 1 image: a later/);
  assert.doesNotMatch(jobResultMessage({ kind: "inference", status: "succeeded", result: {} }), /Model version/);
  assert.equal(jobResultMessage({ kind: "training", status: "succeeded", result: { number: 3 } }), "Model version v3 created.");
  assert.equal(jobResultMessage({ kind: "training", status: "running" }), "");
  assert.equal(jobStageText({ status: "succeeded", stage: "evaluating" }), "done", "a finished job no longer says 'evaluating'");
  assert.equal(jobStageText({ status: "failed", stage: "features" }), "failed during features");
  assert.equal(jobStageText({ status: "running", stage: "coreset" }), "coreset");
  assert.equal(jobDuration({ started_at: "2026-01-01T00:00:00Z", finished_at: "2026-01-01T00:01:30Z" }), 90);
  assert.equal(jobDuration({ started_at: null }), null);
});

test("long names are shortened in the middle, keeping the distinguishing end", () => {
  assert.equal(middleEllipsis("good_0001.png", 24), "good_0001.png");
  const short = middleEllipsis("station_7_camera_left_scratch_0042.png", 24);
  assert.equal(short.length, 24);
  assert.ok(short.startsWith("station_7_") && short.endsWith("_0042.png") && short.includes("…"));
});

test("the default colour map is perceptually uniform and low scores do not tint", () => {
  assert.equal(DEFAULT_COLOUR_MAP, "viridis");
  const out = colouriseInto(new Uint8Array([0, 64, 255]), colourLut(DEFAULT_COLOUR_MAP), new Uint8ClampedArray(12));
  assert.deepEqual([out[3], out[7], out[11]], [0, 64, 255], "alpha proportional to the score");
});

test("the training form gives a rough duration, from this project's past runs when it has them", () => {
  assert.match(roughDuration("patchcore", 100), /roughly 12s on a 2-core CPU for 100 training images/);
  const past = [
    { status: "succeeded", params: { pipeline: "dfr" }, started_at: "2026-01-01T00:00:00Z", finished_at: "2026-01-01T00:02:00Z" },
    { status: "failed", params: { pipeline: "dfr" }, started_at: "2026-01-01T00:00:00Z", finished_at: "2026-01-01T00:00:05Z" },
  ];
  assert.match(roughDuration("dfr", 100, past), /about 2m 0s \(median of 1 earlier training here\)/);
  assert.equal(roughDuration("mystery", 10), "no estimate yet");
  assert.match(roughDuration("dfr", 100), /up to roughly 4m 30s .*budget of steps/);
});
