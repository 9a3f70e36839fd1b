import { test } from "node:test";
import assert from "node:assert/strict";
import * as g from "../../../frontend/static/frontend/js/geometry.js";
import * as vt from "../../../frontend/static/frontend/js/view_transform.js";

const square = [[0, 0], [10, 0], [10, 10], [0, 10]];
const donut = { outer: square, holes: [[[4, 4], [6, 4], [6, 6], [4, 6]]] };

test("area of a polygon subtracts its holes", () => {
  assert.equal(g.ringArea(square), 100);
  assert.equal(g.polygonArea(donut), 96);
});

test("a point in a hole is outside the polygon", () => {
  assert.ok(g.pointInPolygon([2, 2], donut));
  assert.ok(!g.pointInPolygon([5, 5], donut));
  assert.ok(!g.pointInPolygon([11, 5], donut));
});

test("nearest vertex respects the radius and prefers the closest", () => {
  const hit = g.nearestVertex([donut], [9.5, 0.4], 2);
  assert.deepEqual([hit.polygon, hit.ring, hit.vertex], [0, "outer", 1]);
  const inHole = g.nearestVertex([donut], [4.2, 4.1], 1);
  assert.deepEqual([inHole.ring, inHole.vertex], [0, 0]);
  assert.equal(g.nearestVertex([donut], [20, 20], 2), null);
});

test("nearest edge gives the insertion point, closing edge included", () => {
  const hit = g.nearestEdge([{ outer: square, holes: [] }], [0.5, 5], 1);
  assert.equal(hit.edge, 3); // the edge from (0,10) back to (0,0)
  assert.deepEqual(hit.point, [0, 5]);
});

test("polygonAt picks the top-most polygon", () => {
  const a = { outer: square, holes: [] };
  const b = { outer: [[5, 5], [15, 5], [15, 15]], holes: [] };
  assert.equal(g.polygonAt([a, b], [9, 6]), 1);
  assert.equal(g.polygonAt([a, b], [1, 1]), 0);
  assert.equal(g.polygonAt([a, b], [30, 30]), -1);
});

test("self-intersecting rings are detected", () => {
  assert.ok(!g.ringSelfIntersects(square));
  assert.ok(g.ringSelfIntersects([[0, 0], [10, 10], [10, 0], [0, 10]]));
});

test("zooming keeps the point under the cursor fixed", () => {
  const t0 = vt.fit(200, 100, 400, 400, 1);
  assert.equal(t0.scale, 2);
  const before = vt.toImage(t0, 123, 234);
  const t1 = vt.zoomAt(t0, 123, 234, 1.7);
  const after = vt.toImage(t1, 123, 234);
  assert.ok(Math.abs(before[0] - after[0]) < 1e-9 && Math.abs(before[1] - after[1]) < 1e-9);
  const [sx, sy] = vt.toScreen(t1, ...after);
  assert.ok(Math.abs(sx - 123) < 1e-9 && Math.abs(sy - 234) < 1e-9);
});

test("zoom is clamped and pan moves the offset only", () => {
  const t = vt.zoomAt(vt.identity(), 0, 0, 1e9);
  assert.equal(t.scale, vt.MAX_SCALE);
  assert.deepEqual(vt.panBy(vt.identity(), 5, -3), { scale: 1, offsetX: 5, offsetY: -3 });
});

test("routes match with parameters and optional trailing slash", async () => {
  const { matchRoute } = await import("../../../frontend/static/frontend/js/router.js");
  const routes = [{ path: "/projects/:id" }, { path: "/projects/:id/images/:imageId/annotate" }];
  assert.deepEqual(matchRoute(routes, "/projects/3/").params, { id: "3" });
  assert.deepEqual(matchRoute(routes, "/projects/3/images/9/annotate").params, { id: "3", imageId: "9" });
  assert.equal(matchRoute(routes, "/nope/"), null);
});

test("role matrix mirrors the server's and roles are read from me", async () => {
  const { can, roleIn } = await import("../../../frontend/static/frontend/js/roles.js");
  assert.ok(can("inspector", "review") && !can("inspector", "annotate") && !can("inspector", "manage"));
  assert.ok(can("annotator", "annotate") && !can("annotator", "review"));
  assert.ok(can("admin", "manage"));
  assert.equal(roleIn({ is_staff: true }, { id: 1 }), "admin");
  assert.equal(roleIn({ memberships: [{ project: 2, role: "annotator" }] }, { id: 2 }), "annotator");
  assert.equal(roleIn({ memberships: [] }, { id: 2, role: "inspector" }), "inspector");
});

// Reference counts from the server's rasteriser (ml.formats.masks.rasterize via ml.assist.pixel_area).
test("pixel area matches the server's mask, also for thin cracks the shoelace area misses", () => {
  const crack = [];
  for (let i = 0; i < 80; i += 2) crack.push([10 + i, 50 + (i % 7) * 0.3]);
  for (let i = 78; i >= 0; i -= 2) crack.push([10 + i, 51.2 + (i % 7) * 0.3]);
  const cases = [
    [{ outer: [[10, 10], [50, 10], [50, 40], [10, 40]], holes: [] }, 1271],
    [{ outer: [[10, 10], [90, 10], [90, 70], [10, 70]], holes: [[[30, 30], [60, 30], [60, 50], [30, 50]]] }, 4390],
    [{ outer: [[5, 5], [95, 20], [30, 80]], holes: [] }, 3311],
    [{ outer: crack, holes: [] }, 175],
  ];
  for (const [polygon, server] of cases) {
    const got = g.polygonPixelArea(polygon);
    assert.ok(Math.abs(got - server) / server < 0.02, `${got} vs server ${server}`);
  }
  assert.ok(g.polygonArea(cases[3][0]) < 0.6 * 175); // what the old readout showed
});

test("preview size keeps the image's aspect ratio", () => {
  assert.deepEqual(g.previewSize(1920, 1080, 240), [240, 135]);
  assert.deepEqual(g.previewSize(100, 400, 240), [60, 240]);
});

test("thinning a stroke keeps its ends and spaces the rest", () => {
  const pts = [...Array(21).keys()].map((i) => [i, 0]);
  const thin = g.thinStroke(pts, 5);
  assert.deepEqual(thin[0], [0, 0]);
  assert.deepEqual(thin[thin.length - 1], [20, 0]);
  assert.deepEqual(thin.map((p) => p[0]), [0, 5, 10, 15, 20]);
  assert.deepEqual(g.boxFromCorners([9, 2], [3, 7]), [3, 2, 9, 7]);
});
