import { test } from "node:test";
import assert from "node:assert/strict";
import { railMaskRgba, boxesOnScreen, RAIL_TINT } from "../../../frontend/static/frontend/js/canvas/rail_layer.js";
import { queueItem } from "../../../frontend/static/frontend/js/pages/review_item.js";

test("the rail mask is tinted where the rail is and clear elsewhere", () => {
  const rgba = railMaskRgba(new Uint8Array([0, 255, 200, 10]));
  assert.deepEqual([...rgba.slice(0, 4)], [0, 0, 0, 0]);
  assert.deepEqual([...rgba.slice(4, 8)], [...RAIL_TINT, 140]);
  assert.equal(rgba[11], 140);
  assert.equal(rgba[15], 0);
});

test("boxes follow the viewer's zoom and pan", () => {
  const boxes = [{ x: 10, y: 20, width: 4, height: 6, score: 1.234 }];
  assert.deepEqual(boxesOnScreen(boxes, { scale: 1, offsetX: 0, offsetY: 0 }), [{ rect: [10, 20, 4, 6], label: "1.23" }]);
  const zoomed = boxesOnScreen(boxes, { scale: 2, offsetX: 5, offsetY: -3 })[0];
  assert.deepEqual(zoomed.rect, [25, 37, 8, 12]);
  assert.deepEqual(boxesOnScreen(undefined, { scale: 1, offsetX: 0, offsetY: 0 }), []);
});

test("a queue item carries the rail mask URL and the boxes when the prediction has them", () => {
  const raw = {
    id: 3, image: { id: 9, original_name: "f.png", width: 4, height: 2, file_url: "/f" }, score: 2, flagged: true,
    heatmap_range: { min: 0, max: 2 }, heatmap_url: "/h", threshold: 1, model_version: { number: 1, pipeline: "rail" },
    boxes: [{ x: 0, y: 0, width: 1, height: 1, score: 2 }], class_mask_url: "/api/predictions/3/class_mask.png",
  };
  const item = queueItem(raw);
  assert.equal(item.classMaskUrl, "/api/predictions/3/class_mask.png");
  assert.equal(item.boxes.length, 1);
  const plain = queueItem({ ...raw, boxes: undefined, class_mask_url: undefined });
  assert.equal(plain.classMaskUrl, null);
  assert.deepEqual(plain.boxes, []);
});
