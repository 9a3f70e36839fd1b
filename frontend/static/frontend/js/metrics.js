// Model metrics for people: human names, one rounding rule, which value is better, and
// whether versions were measured on the same images. Pure (tested in node); the catalogue
// comes from GET /api/metrics/ ({key: {label, better: "higher" | "lower" | null}}).

/** Name of a metric: the catalogue's label, else the key in words. */
export function metricLabel(key, catalogue = {}) {
  const known = catalogue[key];
  if (known && known.label) return known.label;
  const words = key.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Counts as integers, everything else with three decimals (thresholds: four significant digits). */
export function fmtMetric(key, value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (typeof value !== "number") return String(value);
  if (/(^|_)images$/.test(key)) return String(Math.round(value));
  if (/threshold$/.test(key)) return fmtThreshold(value);
  return value.toFixed(3);
}

export function fmtThreshold(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const a = Math.abs(value);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? value.toExponential(3) : String(Number(value.toPrecision(4)));
}

/**
 * Id of the version with the better value of `key` among `versions`, or null when the metric is
 * not compared (a count, a threshold, unknown direction), fewer than two versions carry it, or
 * they tie. Values are compared at the shown rounding, so two equal-looking numbers do not win.
 */
export function bestOf(versions, key, catalogue = {}) {
  const better = catalogue[key] ? catalogue[key].better : null;
  if (better !== "higher" && better !== "lower") return null;
  const values = versions
    .map((v) => ({ id: v.id, x: v.metrics ? v.metrics[key] : undefined }))
    .filter((e) => typeof e.x === "number" && Number.isFinite(e.x))
    .map((e) => ({ ...e, x: Number(e.x.toFixed(3)) }));
  if (values.length < 2) return null;
  const pick = better === "higher" ? Math.max(...values.map((e) => e.x)) : Math.min(...values.map((e) => e.x));
  const winners = values.filter((e) => e.x === pick);
  return winners.length === 1 ? winners[0].id : null;
}

/**
 * Whether `versions` were evaluated on the same images. Returns {same, groups, stale} where
 * groups is [{key, count, numbers}] (one per evaluation set, newest version first) and stale
 * lists the version numbers whose set is not the current test split (evaluate them again).
 */
export function comparison(versions) {
  const groups = new Map();
  for (const v of versions) {
    const e = v.evaluation || {};
    const key = e.key || `none-${v.id}`;
    if (!groups.has(key)) groups.set(key, { key, count: e.count ?? null, numbers: [] });
    groups.get(key).numbers.push(v.number);
  }
  const stale = versions.filter((v) => v.evaluation && v.evaluation.is_current === false).map((v) => v.number);
  return { same: groups.size <= 1, groups: [...groups.values()], stale };
}

/** One sentence about mixed evaluation sets, or "" when every version shares one. */
export function comparisonNote(versions) {
  const { same, groups } = comparison(versions);
  if (same) return "";
  const parts = groups.map((g) => `${g.numbers.map((n) => "v" + n).join(", ")} on ${g.count ?? "?"} images`);
  return `Not measured on the same images (${parts.join("; ")}): metrics of different sets do not compare. ` +
    "Evaluate the older versions on the current test split to compare them fairly.";
}

/** Training-set size of a version as it was when it trained. */
export function trainImages(version) {
  const s = version.snapshot;
  if (!s) return null;
  return s.train_images ?? null;
}
