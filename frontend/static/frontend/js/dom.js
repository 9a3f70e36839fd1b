// Small DOM helpers shared by the pages: element creation, messages, formatting.

/** h("button.primary", {onclick, "aria-label": "..."}, "text", child, ...) */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const node = document.createElement(name || "div");
  if (classes.length) node.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "value") node.value = v;
    else if (k === "checked") node.checked = !!v;
    // Through the CSSOM, not a style attribute: the Content-Security-Policy blocks inline style attributes.
    else if (k === "style") node.style.cssText = v;
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/** A status line that screen readers announce. kind: info | error | success */
export function message(text, kind = "info") {
  return h(`p.msg.msg-${kind}`, { role: kind === "error" ? "alert" : "status" }, text);
}

export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const node = message(text, kind);
  box.append(node);
  setTimeout(() => node.remove(), kind === "error" ? 8000 : 3500);
}

export function fmtNumber(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (typeof v !== "number") return String(v);
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

export function fmtPercent(v) {
  return v == null ? "–" : `${Math.round(v * 100)}%`;
}

export function fmtDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function fmtDate(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
}

/** True when a keyboard event comes from a text field, where shortcuts must not fire. */
export function isTyping(e) {
  const t = e.target;
  return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) && t.type !== "range" && t.type !== "checkbox";
}

/**
 * `name` shortened in the middle to at most `max` characters, keeping its end (where
 * numbered files differ) and extension: "scratch_0001_left_camera.png" -> "scratch_0…camera.png".
 */
export function middleEllipsis(name, max = 22) {
  const text = String(name ?? "");
  if (text.length <= max) return text;
  const keepEnd = Math.ceil((max - 1) / 2);
  const keepStart = max - 1 - keepEnd;
  return `${text.slice(0, keepStart)}…${text.slice(text.length - keepEnd)}`;
}

/** Text with `code` spans (as project descriptions are written) as nodes: <code> for each span. */
export function inlineCode(text) {
  const parts = String(text ?? "").split(/`([^`]+)`/);
  return parts.map((part, i) => (i % 2 ? h("code", {}, part) : part)).filter((p) => p !== "");
}
