// Model-version charts drawn as SVG by our own code: ROC and PR curves, and the
// histogram of normal vs anomalous scores with the threshold marked. The layout
// arithmetic is pure (tested in node); `renderX` functions build SVG elements.

const SVG = "http://www.w3.org/2000/svg";
export const CHART = { width: 320, height: 220, left: 40, right: 10, top: 12, bottom: 32 };

export function linearScale(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

/** SVG path "M x y L x y ..." of a curve in data space [0,1]x[0,1] (or given domains). */
export function curvePath(xs, ys, { xDomain = [0, 1], yDomain = [0, 1], box = CHART } = {}) {
  const sx = linearScale(xDomain[0], xDomain[1], box.left, box.width - box.right);
  const sy = linearScale(yDomain[0], yDomain[1], box.height - box.bottom, box.top);
  const n = Math.min(xs.length, ys.length);
  const parts = [];
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
    parts.push(`${parts.length ? "L" : "M"}${sx(xs[i]).toFixed(1)} ${sy(ys[i]).toFixed(1)}`);
  }
  return parts.join(" ");
}

/**
 * Bars of a two-series histogram sharing bin edges: [{x, width, normal: {y, height}, anomalous: {y, height}}].
 * Heights are scaled to the highest count of either series.
 */
export function histogramBars(edges, normal, anomalous, box = CHART) {
  const bins = edges.length - 1;
  const maxCount = Math.max(1, ...normal, ...anomalous);
  const sx = linearScale(edges[0], edges[bins], box.left, box.width - box.right);
  const sy = linearScale(0, maxCount, box.height - box.bottom, box.top);
  const bars = [];
  for (let i = 0; i < bins; i++) {
    const x0 = sx(edges[i]);
    const x1 = sx(edges[i + 1]);
    const bar = (c) => ({ y: sy(c || 0), height: sy(0) - sy(c || 0) });
    bars.push({ x: x0, width: Math.max(0.5, x1 - x0), normal: bar(normal[i]), anomalous: bar(anomalous[i]) });
  }
  return { bars, xScale: sx, maxCount };
}

// --- DOM rendering (browser only) -------------------------------------------

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

function frame(title, xLabel, yLabel) {
  const svg = el("svg", { viewBox: `0 0 ${CHART.width} ${CHART.height}`, role: "img", "aria-label": title, class: "chart" });
  svg.append(el("title", {}, title));
  const x0 = CHART.left, x1 = CHART.width - CHART.right, y0 = CHART.height - CHART.bottom, y1 = CHART.top;
  svg.append(el("rect", { x: x0, y: y1, width: x1 - x0, height: y0 - y1, class: "chart-bg" }));
  svg.append(el("text", { x: (x0 + x1) / 2, y: CHART.height - 4, class: "chart-label", "text-anchor": "middle" }, xLabel));
  svg.append(el("text", { x: 10, y: (y0 + y1) / 2, class: "chart-label", "text-anchor": "middle", transform: `rotate(-90 10 ${(y0 + y1) / 2})` }, yLabel));
  return svg;
}

function ticks01(svg) {
  const sx = linearScale(0, 1, CHART.left, CHART.width - CHART.right);
  const sy = linearScale(0, 1, CHART.height - CHART.bottom, CHART.top);
  for (const v of [0, 0.5, 1]) {
    svg.append(el("text", { x: sx(v), y: CHART.height - CHART.bottom + 12, class: "chart-tick", "text-anchor": "middle" }, String(v)));
    svg.append(el("text", { x: CHART.left - 4, y: sy(v) + 3, class: "chart-tick", "text-anchor": "end" }, String(v)));
  }
}

/** series: [{label, xs, ys, className}] */
export function renderCurves(title, xLabel, yLabel, series, { diagonal = false } = {}) {
  const svg = frame(title, xLabel, yLabel);
  ticks01(svg);
  if (diagonal) svg.append(el("path", { d: curvePath([0, 1], [0, 1]), class: "chart-diagonal" }));
  series.forEach((s, i) => {
    svg.append(el("path", { d: curvePath(s.xs, s.ys), class: `chart-line series-${i}`, "data-series": s.label || i }));
    if (s.label && series.length > 1) {
      const y = CHART.height - CHART.bottom - 10 - 12 * (series.length - 1 - i);
      svg.append(el("line", { x1: CHART.width - 70, x2: CHART.width - 56, y1: y - 3, y2: y - 3, class: `chart-line series-${i}` }));
      svg.append(el("text", { x: CHART.width - 52, y, class: "chart-tick" }, s.label));
    }
  });
  return svg;
}

/** Histogram of normal vs anomalous scores with a vertical threshold line. */
export function renderHistogram(title, { edges, normal, anomalous }, threshold) {
  const svg = frame(title, "score", "images");
  const { bars, xScale, maxCount } = histogramBars(edges, normal, anomalous);
  for (const b of bars) {
    svg.append(el("rect", { x: b.x, y: b.normal.y, width: b.width, height: b.normal.height, class: "bar-normal" }));
    svg.append(el("rect", { x: b.x, y: b.anomalous.y, width: b.width, height: b.anomalous.height, class: "bar-anomalous" }));
  }
  const lo = edges[0], hi = edges[edges.length - 1];
  svg.append(el("text", { x: CHART.left, y: CHART.height - CHART.bottom + 12, class: "chart-tick", "text-anchor": "start" }, fmt(lo)));
  svg.append(el("text", { x: CHART.width - CHART.right, y: CHART.height - CHART.bottom + 12, class: "chart-tick", "text-anchor": "end" }, fmt(hi)));
  svg.append(el("text", { x: CHART.left - 4, y: CHART.top + 8, class: "chart-tick", "text-anchor": "end" }, String(maxCount)));
  if (threshold != null && Number.isFinite(threshold)) {
    const x = Math.max(CHART.left, Math.min(CHART.width - CHART.right, xScale(threshold)));
    svg.append(el("line", { x1: x, x2: x, y1: CHART.top, y2: CHART.height - CHART.bottom, class: "chart-threshold" }));
    // Below the legend's row, on the side of the line with more room: never over the legend.
    const right = x > (CHART.left + CHART.width - CHART.right) / 2;
    svg.append(el("text", { x: right ? x - 3 : x + 3, y: CHART.top + 28, class: "chart-tick threshold-label", "text-anchor": right ? "end" : "start" }, `threshold ${fmt(threshold)}`));
  }
  const legend = el("g", { class: "chart-legend" });
  legend.append(el("rect", { x: CHART.width - 128, y: CHART.top + 4, width: 8, height: 8, class: "bar-normal" }));
  legend.append(el("text", { x: CHART.width - 117, y: CHART.top + 12, class: "chart-tick" }, "normal"));
  legend.append(el("rect", { x: CHART.width - 74, y: CHART.top + 4, width: 8, height: 8, class: "bar-anomalous" }));
  legend.append(el("text", { x: CHART.width - 63, y: CHART.top + 12, class: "chart-tick" }, "anomalous"));
  svg.append(legend);
  return svg;
}

export function fmt(v) {
  if (v == null || !Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  return a !== 0 && (a < 0.01 || a >= 10000) ? v.toExponential(2) : String(Math.round(v * 1000) / 1000);
}
