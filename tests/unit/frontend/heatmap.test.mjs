import { test } from "node:test";
import assert from "node:assert/strict";
import * as h from "../../../frontend/static/frontend/js/heatmap.js";
import * as charts from "../../../frontend/static/frontend/js/charts.js";

test("score and level map onto each other through the heatmap's range", () => {
  assert.equal(h.scoreToLevel(2, 2, 4), 0);
  assert.equal(h.scoreToLevel(4, 2, 4), 255);
  assert.equal(h.scoreToLevel(3, 2, 4), 127.5);
  assert.equal(h.scoreToLevel(10, 2, 4), 256); // above the range: nothing is in the region
  assert.deepEqual([...h.levelsFromRgba(new Uint8ClampedArray([7, 7, 7, 255, 200, 200, 200, 255]))], [7, 200]);
});

test("raising the threshold shrinks the predicted region", () => {
  const levels = new Uint8Array([0, 50, 100, 150, 200, 250]);
  assert.equal(h.regionFromLevels(levels, 0).count, 6);
  assert.equal(h.regionFromLevels(levels, 101).count, 3);
  assert.equal(h.regionFromLevels(levels, 256).count, 0);
});

test("colour maps have 256 entries and known end points", () => {
  const jet = h.colourLut("jet");
  assert.equal(jet.length, 768);
  assert.deepEqual([...h.colourLut("gray").slice(765)], [255, 255, 255]);
  assert.throws(() => h.colourLut("nope"), /known: jet/);
});

test("colourised overlay is more opaque where the heatmap is hot", () => {
  const out = h.colouriseInto(new Uint8Array([0, 255]), h.colourLut("inferno"), new Uint8ClampedArray(8));
  assert.ok(out[7] > out[3]);
});

test("region outline marks the border and fills the inside faintly", () => {
  const w = 5, hgt = 5;
  const region = new Uint8Array(w * hgt);
  for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) region[y * w + x] = 1;
  const out = h.regionOutlineInto(region, w, hgt, [255, 0, 0], new Uint8ClampedArray(w * hgt * 4));
  assert.equal(out[(1 * w + 1) * 4 + 3], 255);
  assert.equal(out[(2 * w + 2) * 4 + 3], 40);
  assert.equal(out[(0 * w + 0) * 4 + 3], 0);
  const full = h.regionOutlineInto(new Uint8Array(w * hgt).fill(1), w, hgt, [255, 0, 0], new Uint8ClampedArray(w * hgt * 4));
  assert.equal(full[3], 40, "the image border is not drawn as an outline");
});

test("histogram bars share a scale and curves become SVG paths", () => {
  const { bars, maxCount } = charts.histogramBars([0, 1, 2], [4, 0], [1, 2]);
  assert.equal(maxCount, 4);
  assert.ok(bars[0].normal.height > bars[0].anomalous.height);
  assert.equal(bars[1].normal.height, 0);
  assert.match(charts.curvePath([0, 1], [0, 1]), /^M\S+ \S+ L\S+ \S+$/);
});
