// Entry point: loads who is logged in, draws the header and navigation for the
// user's role in the current project, and mounts the page for the current path.

import { api, ApiError } from "./api.js";
import { h, clear, message } from "./dom.js";
import { matchRoute } from "./router.js";
import { can, roleIn } from "./roles.js";

const routes = [
  { path: "/login", page: () => import("./pages/login.js"), public: true, title: "Log in" },
  { path: "/", page: () => import("./pages/projects.js"), title: "Projects" },
  { path: "/projects/:id", page: () => import("./pages/dashboard.js"), title: "Dashboard", nav: "dashboard" },
  { path: "/projects/:id/images", page: () => import("./pages/images.js"), title: "Images", nav: "images" },
  { path: "/projects/:id/review", page: () => import("./pages/review.js"), title: "Review", nav: "review", needs: "review", full: true },
  { path: "/projects/:id/to-annotate", page: () => import("./pages/annotate_queue.js"), title: "Images to annotate", nav: "images", needs: "annotate" },
  { path: "/projects/:id/images/:imageId/annotate", page: () => import("./pages/annotate.js"), title: "Annotate", nav: "images", needs: "annotate", full: true },
  { path: "/projects/:id/training", page: () => import("./pages/training.js"), title: "Training", nav: "training", needs: "manage" },
  { path: "/projects/:id/jobs", page: () => import("./pages/jobs.js"), title: "Jobs", nav: "jobs" },
  { path: "/projects/:id/jobs/:jobId", page: () => import("./pages/job.js"), title: "Job", nav: "jobs" },
  { path: "/projects/:id/models", page: () => import("./pages/models.js"), title: "Model versions", nav: "models", needs: "manage" },
];

const NAV = [
  { key: "dashboard", label: "Dashboard", href: (p) => `/projects/${p}/` },
  { key: "images", label: "Images", href: (p) => `/projects/${p}/images/` },
  { key: "review", label: "Review", href: (p) => `/projects/${p}/review/`, needs: "review" },
  { key: "training", label: "Training", href: (p) => `/projects/${p}/training/`, needs: "manage" },
  { key: "models", label: "Model versions", href: (p) => `/projects/${p}/models/`, needs: "manage" },
  { key: "jobs", label: "Jobs", href: (p) => `/projects/${p}/jobs/` },
];

const state = { me: null, cleanup: null, guard: null, projectCache: new Map(), mounting: 0 };

export function navigate(path, { replace = false } = {}) {
  if (state.guard && !state.guard()) return;
  if (replace) history.replaceState({}, "", path);
  else history.pushState({}, "", path);
  mount();
}

/** A page with unsaved work registers a guard; navigation asks before leaving. */
export function setLeaveGuard(fn) {
  state.guard = fn;
}

async function loadMe() {
  try {
    state.me = await api.me();
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    state.me = null;
  }
  return state.me;
}

async function projectFor(id) {
  if (!state.projectCache.has(id)) state.projectCache.set(id, await api.project(id));
  return state.projectCache.get(id);
}

function renderHeader(project, role, active) {
  const header = clear(document.getElementById("header"));
  const brand = h("a.brand", { href: "/", "data-link": true }, "Anomaly inspection");
  const nav = h("nav.main-nav", { "aria-label": "Project" });
  if (project) {
    nav.append(h("span.project-name", { title: project.name }, project.name));
    for (const item of NAV) {
      if (item.needs && !can(role, item.needs)) continue;
      nav.append(
        h("a", { href: item.href(project.id), "data-link": true, "data-nav": item.key, "aria-current": item.key === active ? "page" : null }, item.label),
      );
    }
  }
  const user = h("div.user");
  if (state.me) {
    user.append(
      h("span.username", {}, state.me.username + (role ? ` · ${role}` : "")),
      h("button.link", { type: "button", id: "logout", onclick: logout }, "Log out"),
    );
  }
  header.append(brand, nav, user);
}

async function logout() {
  if (state.guard && !state.guard()) return;
  state.guard = null;
  try {
    await api.logout();
  } finally {
    state.me = null;
    state.projectCache.clear();
    navigate("/login/");
  }
}

export async function mount() {
  // Each mount has a number; one that a newer navigation overtook stops after its awaits,
  // so two pages never end up drawn into the same root.
  const token = ++state.mounting;
  const stale = () => token !== state.mounting;
  const root = document.getElementById("app");
  if (state.cleanup) {
    try {
      state.cleanup();
    } catch (e) {
      console.error(e);
    }
    state.cleanup = null;
  }
  state.guard = null;
  state.path = location.pathname + location.search;
  const found = matchRoute(routes, location.pathname);
  if (!found) {
    clear(root).append(h("section.page", {}, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/", "data-link": true }, "Back to projects"))));
    return;
  }
  const { route, params } = found;
  if (!route.public && !state.me && !(await loadMe())) {
    if (!stale()) navigate(`/login/?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    return;
  }
  if (stale()) return;
  let project = null;
  let role = null;
  try {
    if (params.id) {
      project = await projectFor(params.id);
      role = roleIn(state.me, project);
    }
  } catch (e) {
    if (stale()) return;
    renderHeader(null, null, null);
    clear(root).append(h("section.page", {}, h("h1", {}, "Project not available"), message(e.message, "error")));
    return;
  }
  if (stale()) return;
  document.title = `${route.title}${project ? " · " + project.name : ""} · Anomaly inspection`;
  document.body.classList.toggle("full", !!route.full);
  renderHeader(project, role, route.nav);
  clear(root);
  if (route.needs && !can(role, route.needs)) {
    root.append(h("section.page", {}, h("h1", {}, route.title), message(`Your role in this project (${role}) cannot open this page.`, "error")));
    return;
  }
  const mod = await route.page();
  if (stale()) return;
  const ctx = { params, me: state.me, project, role, navigate, setLeaveGuard, query: new URLSearchParams(location.search), refreshMe: loadMe };
  try {
    const cleanup = (await mod.render(root, ctx)) || null;
    // Overtaken while it loaded: undo its listeners now, the newer page owns `cleanup`.
    if (stale()) {
      if (cleanup) cleanup();
      return;
    }
    state.cleanup = cleanup;
  } catch (e) {
    console.error(e);
    root.append(message(`This page failed to load: ${e.message}`, "error"));
  }
  const heading = root.querySelector("h1");
  if (heading && !root.contains(document.activeElement)) heading.setAttribute("tabindex", "-1");
}

// Internal links go through the router; modifier clicks open new tabs as usual.
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-link]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
// Back/forward: a page with unsaved work may refuse; then the URL is put back.
window.addEventListener("popstate", () => {
  if (state.guard && !state.guard()) {
    history.pushState({}, "", state.path);
    return;
  }
  mount();
});
// A session that ends while the app is in use (logged out elsewhere, expired) leads to login.
window.addEventListener("api:unauthenticated", () => {
  if (!state.me || location.pathname.startsWith("/login")) return;
  state.me = null;
  state.guard = null;
  navigate(`/login/?next=${encodeURIComponent(location.pathname)}`, { replace: true });
});
window.addEventListener("beforeunload", (e) => {
  if (state.guard && !state.guard(true)) {
    e.preventDefault();
    e.returnValue = "";
  }
});

mount();
