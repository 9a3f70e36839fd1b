import { test } from "node:test";
import assert from "node:assert/strict";
import { fieldKind, parseValue, formatValue, errorKey } from "../../../frontend/static/frontend/js/schema_form.js";
import { queueItem } from "../../../frontend/static/frontend/js/pages/review_item.js";

test("schema properties are read as typed fields", () => {
  assert.deepEqual(fieldKind({ type: ["integer", "null"] }), { kind: "integer", nullable: true, items: undefined });
  assert.equal(fieldKind({ enum: ["fpr", "f1"] }).kind, "enum");
  assert.ok(fieldKind({ anyOf: [{ enum: ["a"] }, { type: "null" }] }).nullable);
});

test("values are parsed with the schema's type and bounds", () => {
  assert.equal(parseValue({ type: "integer", minimum: 1 }, "3"), 3);
  assert.throws(() => parseValue({ type: "integer" }, "2.5"), /whole number/);
  assert.throws(() => parseValue({ type: "number", maximum: 1 }, "2"), /at most 1/);
  assert.equal(parseValue({ type: ["number", "null"] }, ""), null);
  assert.deepEqual(parseValue({ type: "array", items: { type: "integer" } }, "1, 2,3"), [1, 2, 3]);
  assert.deepEqual(parseValue({ type: "array", items: { type: "string" } }, "layer2, layer3"), ["layer2", "layer3"]);
  assert.equal(parseValue({ type: "boolean" }, true), true);
  assert.equal(parseValue({ enum: [16, 32] }, "32"), 32);
  assert.equal(formatValue([1, 2]), "1, 2");
});

test("server errors are mapped to the config key they name", () => {
  assert.equal(errorKey({ message: "config.epochs: must be >= 1", details: { key: "config.epochs" } }), "epochs");
  assert.equal(errorKey({ message: "config.image_size: bad", details: null }), "image_size");
  assert.equal(errorKey({ message: "pipeline: unknown", details: { key: "pipeline" } }), null);
});

test("a review queue entry exposes the heatmap range and the model's threshold", () => {
  const item = queueItem({
    id: 5, image: { id: 9, original_name: "a.png", width: 64, height: 48, file_url: "/api/images/9/file" },
    model_version: { id: 2, number: 1, pipeline: "patchcore" }, score: 0.8, threshold: 0.5, flagged: true,
    heatmap_url: "/api/predictions/5/heatmap.png", heatmap_range: { min: 0.1, max: 2.1 }, verdict: null,
  });
  assert.deepEqual([item.predictionId, item.imageId, item.vmin, item.vmax, item.threshold, item.modelNumber], [5, 9, 0.1, 2.1, 0.5, 1]);
});
