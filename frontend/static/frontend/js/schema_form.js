// A form generated from a pipeline's config JSON schema: defaults filled in,
// values read back with the schema's types, server errors shown at the field
// they name ("config.<key>"). The parsing half is pure and tested in node.

/** The base type and whether null is allowed, for {type}, {type: [t, "null"]}, {enum} or {anyOf}. */
export function fieldKind(prop) {
  let nullable = false;
  let p = prop;
  if (Array.isArray(prop.anyOf)) {
    nullable = prop.anyOf.some((x) => x.type === "null");
    p = { ...prop.anyOf.find((x) => x.type !== "null"), ...prop, anyOf: undefined };
  }
  let type = p.type;
  if (Array.isArray(type)) {
    nullable = nullable || type.includes("null");
    type = type.find((t) => t !== "null");
  }
  if (Array.isArray(p.enum)) return { kind: "enum", options: p.enum, nullable };
  return { kind: type || "string", nullable, items: p.items };
}

/** Typed value of a text input for a schema property; throws Error with a readable message. */
export function parseValue(prop, raw) {
  const { kind, nullable, items, options } = fieldKind(prop);
  const text = typeof raw === "string" ? raw.trim() : raw;
  if (text === "" || text === null || text === undefined) {
    if (nullable) return null;
    if (kind === "string") return "";
    throw new Error("a value is required");
  }
  if (kind === "boolean") return raw === true || raw === "true";
  if (kind === "integer") {
    const v = Number(text);
    if (!Number.isInteger(v)) throw new Error("a whole number is expected");
    return checkBounds(prop, v);
  }
  if (kind === "number") {
    const v = Number(text);
    if (!Number.isFinite(v)) throw new Error("a number is expected");
    return checkBounds(prop, v);
  }
  if (kind === "array") {
    const parts = String(text).split(",").map((s) => s.trim()).filter(Boolean);
    const itemKind = items ? fieldKind(items).kind : "string";
    return parts.map((s) => {
      if (itemKind === "integer" || itemKind === "number") {
        const v = Number(s);
        if (!Number.isFinite(v) || (itemKind === "integer" && !Number.isInteger(v))) throw new Error(`"${s}" is not a ${itemKind === "integer" ? "whole number" : "number"}`);
        return v;
      }
      return s;
    });
  }
  if (kind === "enum") {
    const hit = options.find((o) => String(o) === String(text));
    if (hit === undefined) throw new Error(`one of ${options.join(", ")}`);
    return hit;
  }
  return String(text);
}

function checkBounds(prop, v) {
  if (prop.minimum !== undefined && v < prop.minimum) throw new Error(`at least ${prop.minimum}`);
  if (prop.maximum !== undefined && v > prop.maximum) throw new Error(`at most ${prop.maximum}`);
  return v;
}

/** Text shown in an input for a value (arrays as comma lists, null as empty). */
export function formatValue(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

/** The config key an API error names ("config.epochs: ..." or details.key = "config.epochs"). */
export function errorKey(err) {
  const key = err && err.details && typeof err.details.key === "string" ? err.details.key : null;
  const fromMessage = err && /^config\.([\w.]+):/.exec(err.message || "");
  const k = key || (fromMessage ? `config.${fromMessage[1]}` : null);
  return k && k.startsWith("config.") ? k.slice(7) : null;
}

// --- DOM (browser only) -----------------------------------------------------

/** Builds the form fields into `container`; returns {read(), showError(key, text), clearErrors()}. */
export function buildSchemaForm(container, schema, { idPrefix = "cfg", h }) {
  const fields = {};
  const props = schema.properties || {};
  for (const [key, prop] of Object.entries(props)) {
    const id = `${idPrefix}-${key}`;
    const { kind, options, nullable } = fieldKind(prop);
    let input;
    if (kind === "boolean") input = h("input", { type: "checkbox", id, name: key, checked: !!prop.default });
    else if (kind === "enum")
      input = h("select", { id, name: key }, [...(nullable ? [null] : []), ...options].map((o) => h("option", { value: o === null ? "" : o, selected: o === prop.default }, o === null ? "(none)" : String(o))));
    else
      input = h("input", {
        id, name: key,
        type: kind === "integer" || kind === "number" ? "number" : "text",
        step: kind === "integer" ? 1 : kind === "number" ? "any" : null,
        min: prop.minimum, max: prop.maximum,
        value: formatValue(prop.default),
        placeholder: nullable ? "empty = none" : kind === "array" ? "comma separated" : null,
      });
    const error = h("span.field-error", { id: `${id}-error`, "aria-live": "polite" });
    input.setAttribute("aria-describedby", `${id}-help ${id}-error`);
    const label = key.replace(/_/g, " ");
    const wrap = kind === "boolean"
      ? h("div.field", { "data-key": key }, h("label", { for: id }, input, label), h("span.help", { id: `${id}-help` }, prop.description || ""), error)
      : h("div.field", { "data-key": key }, h("label", { for: id }, h("span", {}, label)), input, h("span.help", { id: `${id}-help` }, prop.description || ""), error);
    container.append(wrap);
    // An error stays only until the user changes the value it is about.
    input.addEventListener("input", () => {
      error.textContent = "";
      input.removeAttribute("aria-invalid");
    });
    fields[key] = { input, error, prop, kind };
  }
  const showError = (key, text) => {
    const f = fields[key];
    if (!f) return false;
    f.error.textContent = text;
    f.input.setAttribute("aria-invalid", "true");
    f.input.focus();
    return true;
  };
  return {
    fields,
    showError,
    clearErrors() {
      for (const f of Object.values(fields)) {
        f.error.textContent = "";
        f.input.removeAttribute("aria-invalid");
      }
    },
    /** The config object, or null after showing the first field error. */
    read() {
      const out = {};
      for (const [key, f] of Object.entries(fields)) {
        try {
          out[key] = parseValue(f.prop, f.kind === "boolean" ? f.input.checked : f.input.value);
        } catch (e) {
          showError(key, e.message);
          return null;
        }
      }
      return out;
    },
  };
}
