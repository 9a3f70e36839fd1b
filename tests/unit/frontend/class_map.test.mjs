import { test } from "node:test";
import assert from "node:assert/strict";
import * as cm from "../../../frontend/static/frontend/js/class_map.js";

const CLASSES = [{ index: 0, name: "sky", color: "#0000ff" }, { index: 2, name: "road", color: "#808080" }, { index: 11, name: "void", color: "#000000" }];

test("each class index takes its class colour; void and unknown indices stay transparent", () => {
  const lut = cm.classLut(CLASSES, cm.voidIndexOf(CLASSES));
  const rgba = cm.colouriseClasses(new Uint8Array([0, 2, 11, 7]), lut);
  assert.deepEqual([...rgba.slice(0, 4)], [0, 0, 255, 255]);
  assert.deepEqual([...rgba.slice(4, 8)], [128, 128, 128, 255]);
  assert.equal(rgba[11], 0); // void
  assert.equal(rgba[15], 0); // no class 7
});

test("the void index is the void class's, else 255; counts per class", () => {
  assert.equal(cm.voidIndexOf(CLASSES), 11);
  assert.equal(cm.voidIndexOf(CLASSES.slice(0, 2)), 255);
  assert.deepEqual(cm.classCounts(new Uint8Array([2, 2, 0])), { 0: 1, 2: 2 });
});
