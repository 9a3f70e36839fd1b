// History-API routing: a table of path patterns -> page modules. Django serves the
// same shell for every one of these paths, so reloading any page works.

export function compile(pattern) {
  const keys = [];
  const rx = new RegExp(
    "^" + pattern.replace(/\/:(\w+)/g, (_, k) => (keys.push(k), "/([^/]+)")) + "/?$",
  );
  return (path) => {
    const m = rx.exec(path);
    if (!m) return null;
    return Object.fromEntries(keys.map((k, i) => [k, decodeURIComponent(m[i + 1])]));
  };
}

export function matchRoute(routes, path) {
  for (const r of routes) {
    r.match = r.match || compile(r.path);
    const params = r.match(path);
    if (params) return { route: r, params };
  }
  return null;
}
