// Annotation state of one image: polygons, the polygon being drawn, selection,
// undo/redo and the version read from the server. Pure (no DOM, no HTTP): the
// editor page feeds it user actions, the canvas draws it, the API client saves
// `toPayload()`. Tested with `node --test`.

import { pointInRing, roundPoint } from "./geometry.js";

const clone = (v) => JSON.parse(JSON.stringify(v));
const MIN_RING = 3;

export class AnnotationState {
  constructor() {
    this.polygons = []; // [{label_class, polygon: {outer, holes}, source}]
    this.draft = null; // {points: [[x, y], ...], hole: bool} while a polygon is being drawn
    this.selected = -1; // index of the selected polygon
    this.version = 0;
    this.isDraft = false; // the server's annotation set was made from a prediction
    this.undoStack = [];
    this.redoStack = [];
    this.savedSnapshot = this.#serialise();
    this.listeners = new Set();
    this.gesture = false;
  }

  /**
   * Replace everything with what GET /api/images/{id}/annotations/ returned:
   * {polygons: [{outer, holes, label_class: {id, ...}, source}], version, is_draft}.
   */
  load({ polygons = [], version = 0, is_draft = false } = {}) {
    this.polygons = polygons.map((a) => ({
      label_class: a.label_class && typeof a.label_class === "object" ? a.label_class.id : a.label_class ?? null,
      polygon: { outer: clone(a.outer), holes: clone(a.holes || []) },
      source: a.source || "manual",
    }));
    this.draft = null;
    this.selected = -1;
    this.version = version;
    this.isDraft = is_draft;
    this.undoStack = [];
    this.redoStack = [];
    this.savedSnapshot = this.#serialise();
    this.#emit();
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  #emit() {
    for (const fn of this.listeners) fn(this);
  }

  #serialise() {
    return JSON.stringify(this.polygons.map((p) => ({ label_class: p.label_class, polygon: p.polygon })));
  }

  #snapshot() {
    return { polygons: clone(this.polygons), draft: clone(this.draft), selected: this.selected };
  }

  #restore(s) {
    this.polygons = s.polygons;
    this.draft = s.draft;
    this.selected = Math.min(s.selected, this.polygons.length - 1);
  }

  /** Records the state before a change so it can be undone. */
  #record() {
    if (this.gesture) return; // a drag is one undo step, recorded when it began
    this.undoStack.push(this.#snapshot());
    if (this.undoStack.length > 200) this.undoStack.shift();
    this.redoStack = [];
  }

  get dirty() {
    return this.#serialise() !== this.savedSnapshot;
  }

  get canUndo() {
    return this.undoStack.length > 0;
  }

  get canRedo() {
    return this.redoStack.length > 0;
  }

  undo() {
    if (!this.canUndo) return false;
    this.redoStack.push(this.#snapshot());
    this.#restore(this.undoStack.pop());
    this.#emit();
    return true;
  }

  redo() {
    if (!this.canRedo) return false;
    this.undoStack.push(this.#snapshot());
    this.#restore(this.redoStack.pop());
    this.#emit();
    return true;
  }

  // --- drawing a new polygon ------------------------------------------------

  /** Adds a vertex to the polygon being drawn (starting one if none). */
  addDraftPoint(p, { hole = false } = {}) {
    this.#record();
    if (!this.draft) this.draft = { points: [], hole };
    this.draft.points.push(roundPoint(p));
    this.#emit();
  }

  /** Esc: forget the polygon being drawn. */
  cancelDraft() {
    if (!this.draft) return false;
    this.#record();
    this.draft = null;
    this.#emit();
    return true;
  }

  /**
   * Enter or a click on the first vertex: the draft becomes a polygon with `labelClass`
   * (null: the server gives it the project's default class), or, when drawn as a hole, a hole of the polygon that contains its first point.
   * Returns the index of the polygon it went into, or -1 when it could not close.
   */
  closeDraft(labelClass) {
    const d = this.draft;
    if (!d || d.points.length < MIN_RING) return -1;
    if (d.hole) {
      const host = this.polygons.findIndex((p) => pointInRing(d.points[0], p.polygon.outer));
      if (host < 0) return -1;
      this.#record();
      this.polygons[host].polygon.holes.push(d.points);
      this.draft = null;
      this.selected = host;
      this.#emit();
      return host;
    }
    this.#record();
    this.polygons.push({ label_class: labelClass ?? null, polygon: { outer: d.points, holes: [] }, source: "manual" });
    this.draft = null;
    this.selected = this.polygons.length - 1;
    this.#emit();
    return this.selected;
  }

  // --- editing existing polygons -------------------------------------------

  #ring(ref) {
    const poly = this.polygons[ref.polygon]?.polygon;
    if (!poly) return null;
    return ref.ring === "outer" ? poly.outer : poly.holes[ref.ring];
  }

  select(index) {
    this.selected = index;
    this.#emit();
  }

  /** A drag is one undo step: call begin, move as often as needed, then end. */
  beginGesture() {
    this.#record();
    this.gestureStart = JSON.stringify(this.polygons);
    this.gesture = true;
  }

  endGesture() {
    this.gesture = false;
    // A click on a vertex without moving it changed nothing: no empty undo step.
    if (JSON.stringify(this.polygons) === this.gestureStart) this.undoStack.pop();
    this.#emit();
  }

  moveVertex(ref, p) {
    const ring = this.#ring(ref);
    if (!ring || !ring[ref.vertex]) return false;
    this.#record();
    ring[ref.vertex] = roundPoint(p);
    this.#emit();
    return true;
  }

  /** Inserts `p` after vertex `ref.edge` of the ring; returns the new vertex's index. */
  insertVertex(ref, p) {
    const ring = this.#ring(ref);
    if (!ring) return -1;
    this.#record();
    ring.splice(ref.edge + 1, 0, roundPoint(p));
    this.#emit();
    return ref.edge + 1;
  }

  /**
   * Removes a vertex. A ring left with fewer than three vertices goes too: a hole
   * disappears, an outer ring takes its polygon with it.
   */
  deleteVertex(ref) {
    const ring = this.#ring(ref);
    if (!ring || !ring[ref.vertex]) return false;
    this.#record();
    ring.splice(ref.vertex, 1);
    if (ring.length < MIN_RING) {
      if (ref.ring === "outer") {
        this.polygons.splice(ref.polygon, 1);
        this.selected = -1;
      } else {
        this.polygons[ref.polygon].polygon.holes.splice(ref.ring, 1);
      }
    }
    this.#emit();
    return true;
  }

  deletePolygon(index) {
    if (!this.polygons[index]) return false;
    this.#record();
    this.polygons.splice(index, 1);
    this.selected = -1;
    this.#emit();
    return true;
  }

  setLabelClass(index, labelClass) {
    const p = this.polygons[index];
    if (!p || p.label_class === labelClass) return false;
    this.#record();
    p.label_class = labelClass;
    this.#emit();
    return true;
  }

  /** "Mark as normal": no anomalous region on this image. */
  clear() {
    if (!this.polygons.length && !this.draft) return false;
    this.#record();
    this.polygons = [];
    this.draft = null;
    this.selected = -1;
    this.#emit();
    return true;
  }

  /** Replace the polygons by predicted ones (each {outer, holes}) as one undoable step. */
  replaceWith(polygons, labelClass, source = "prediction") {
    this.#record();
    this.polygons = polygons.map((p) => ({
      label_class: labelClass,
      polygon: { outer: clone(p.outer), holes: clone(p.holes || []) },
      source,
    }));
    this.draft = null;
    this.selected = -1;
    this.#emit();
  }

  /**
   * A tool's answer (brush, eraser, box, superpixel): the whole set [{outer, holes, label_class, source}]
   * as one undoable step. Returns false, recording nothing, when the set did not change.
   */
  replaceAll(polygons) {
    const next = polygons.map((p) => ({
      label_class: p.label_class ?? null,
      polygon: { outer: clone(p.outer), holes: clone(p.holes || []) },
      source: p.source || "manual",
    }));
    if (JSON.stringify(next) === JSON.stringify(this.polygons)) return false;
    this.#record();
    this.polygons = next;
    this.draft = null;
    this.selected = Math.min(this.selected, next.length - 1);
    this.#emit();
    return true;
  }

  /** The polygons as the tool endpoints take them: [{outer, holes, label_class, source}]. */
  toToolPayload() {
    return this.polygons.map((p) => ({ outer: clone(p.polygon.outer), holes: clone(p.polygon.holes), label_class: p.label_class, source: p.source }));
  }

  // --- saving ---------------------------------------------------------------

  /** The body of PUT /api/images/{id}/annotations/: the full set with the version read. */
  toPayload() {
    return {
      version: this.version,
      polygons: this.polygons.map((p) => ({ outer: clone(p.polygon.outer), holes: clone(p.polygon.holes), label_class: p.label_class })),
    };
  }

  /** After a successful save: the server's new version, nothing left to save. */
  markSaved(version) {
    this.version = version;
    this.isDraft = false;
    this.savedSnapshot = this.#serialise();
    this.#emit();
  }
}
