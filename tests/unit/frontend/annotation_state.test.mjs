import { test } from "node:test";
import assert from "node:assert/strict";
import { AnnotationState } from "../../../frontend/static/frontend/js/annotation_state.js";

function drawTriangle(s, label = 1) {
  s.addDraftPoint([0, 0]);
  s.addDraftPoint([10, 0]);
  s.addDraftPoint([0, 10]);
  return s.closeDraft(label);
}

test("clicks make a polygon once closed with three or more vertices", () => {
  const s = new AnnotationState();
  s.addDraftPoint([0, 0]);
  s.addDraftPoint([10, 0]);
  assert.equal(s.closeDraft(1), -1, "two points do not close");
  s.addDraftPoint([0, 10]);
  assert.equal(s.closeDraft(1), 0);
  assert.deepEqual(s.polygons[0].polygon, { outer: [[0, 0], [10, 0], [0, 10]], holes: [] });
  assert.equal(s.draft, null);
  assert.ok(s.dirty);
});

test("undo and redo step through every change, a drag being one step", () => {
  const s = new AnnotationState();
  drawTriangle(s);
  s.beginGesture();
  s.moveVertex({ polygon: 0, ring: "outer", vertex: 1 }, [11, 1]);
  s.moveVertex({ polygon: 0, ring: "outer", vertex: 1 }, [12, 2]);
  s.endGesture();
  assert.deepEqual(s.polygons[0].polygon.outer[1], [12, 2]);
  s.undo();
  assert.deepEqual(s.polygons[0].polygon.outer[1], [10, 0]);
  s.undo(); // closing
  assert.equal(s.polygons.length, 0);
  assert.equal(s.draft.points.length, 3);
  s.redo();
  s.redo();
  assert.deepEqual(s.polygons[0].polygon.outer[1], [12, 2]);
  assert.ok(!s.canRedo);
});

test("a new change after undo drops the redo history", () => {
  const s = new AnnotationState();
  drawTriangle(s);
  s.undo();
  s.cancelDraft();
  assert.ok(!s.canRedo);
});

test("inserting and deleting vertices; a ring under three vertices disappears", () => {
  const s = new AnnotationState();
  drawTriangle(s);
  assert.equal(s.insertVertex({ polygon: 0, ring: "outer", edge: 0 }, [5, 0]), 1);
  assert.equal(s.polygons[0].polygon.outer.length, 4);
  s.deleteVertex({ polygon: 0, ring: "outer", vertex: 1 });
  assert.equal(s.polygons[0].polygon.outer.length, 3);
  s.deleteVertex({ polygon: 0, ring: "outer", vertex: 0 });
  assert.equal(s.polygons.length, 0);
});

test("a hole is drawn inside the polygon that contains its first point", () => {
  const s = new AnnotationState();
  s.load({ polygons: [{ label_class: { id: 1, name: "defect" }, outer: [[0, 0], [20, 0], [20, 20], [0, 20]], holes: [] }], version: 3 });
  assert.equal(s.polygons[0].label_class, 1);
  for (const p of [[5, 5], [10, 5], [10, 10]]) s.addDraftPoint(p, { hole: true });
  assert.equal(s.closeDraft(1), 0);
  assert.equal(s.polygons[0].polygon.holes.length, 1);
  s.deleteVertex({ polygon: 0, ring: 0, vertex: 0 });
  assert.equal(s.polygons[0].polygon.holes.length, 0, "hole under three vertices is removed");
});

test("payload carries the version read; saving clears dirty", () => {
  const s = new AnnotationState();
  s.load({ polygons: [], version: 7 });
  assert.ok(!s.dirty);
  drawTriangle(s, 4);
  assert.deepEqual(s.toPayload(), { version: 7, polygons: [{ outer: [[0, 0], [10, 0], [0, 10]], holes: [], label_class: 4 }] });
  s.markSaved(8);
  assert.equal(s.version, 8);
  assert.ok(!s.dirty);
});

test("mark normal clears, replaceWith starts from predicted polygons, both undoable", () => {
  const s = new AnnotationState();
  drawTriangle(s);
  s.clear();
  assert.equal(s.polygons.length, 0);
  s.undo();
  assert.equal(s.polygons.length, 1);
  s.replaceWith([{ outer: [[1, 1], [2, 1], [2, 2]] }], 9);
  assert.equal(s.polygons[0].label_class, 9);
  assert.equal(s.polygons[0].source, "prediction");
  s.undo();
  assert.equal(s.polygons[0].label_class, 1);
});

test("listeners hear every change; label class changes are recorded", () => {
  const s = new AnnotationState();
  let calls = 0;
  s.onChange(() => calls++);
  drawTriangle(s);
  s.setLabelClass(0, 2);
  assert.equal(s.polygons[0].label_class, 2);
  assert.equal(calls, 5);
  s.undo();
  assert.equal(s.polygons[0].label_class, 1);
});

test("a gesture that moved nothing leaves no undo step", () => {
  const s = new AnnotationState();
  drawTriangle(s);
  const depth = s.undoStack.length;
  s.beginGesture();
  s.endGesture();
  assert.equal(s.undoStack.length, depth);
});

test("a tool's answer replaces the set as one undo step, and an unchanged answer records nothing", () => {
  const s = new AnnotationState();
  drawTriangle(s, 1);
  const before = s.toToolPayload();
  const painted = [{ outer: [[0, 0], [20, 0], [20, 20], [0, 20]], holes: [[[5, 5], [8, 5], [8, 8]]], label_class: 1, source: "manual" }];
  const depth = s.undoStack.length;
  assert.equal(s.replaceAll(painted), true);
  assert.equal(s.undoStack.length, depth + 1);
  assert.deepEqual(s.toToolPayload(), painted);
  assert.equal(s.replaceAll(painted), false);
  assert.equal(s.undoStack.length, depth + 1);
  s.undo();
  assert.deepEqual(s.toToolPayload(), before);
  assert.deepEqual(s.toPayload().polygons[0].label_class, 1);
});
