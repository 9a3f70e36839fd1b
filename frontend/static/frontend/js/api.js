// The one API client: every page talks to the server through these functions and
// nothing else. Errors arrive as {"error": message, "details": ...}; they become
// ApiError so pages can show the message (and field details) where it belongs.

export class ApiError extends Error {
  constructor(status, message, details) {
    super(message);
    this.status = status;
    this.details = details ?? null;
  }
  get isConflict() {
    return this.status === 409;
  }
}

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function request(method, url, { json, form, query, signal } = {}) {
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, v);
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  const res = await fetch(url, { method, headers, body, credentials: "same-origin", signal });
  if (res.status === 204) return null;
  const type = res.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const message = (data && data.error) || (data && data.detail) || `${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, message, data && data.details);
    if (res.status === 401 || (res.status === 403 && /credentials|authenticat/i.test(message))) {
      window.dispatchEvent(new CustomEvent("api:unauthenticated"));
    }
    throw err;
  }
  return data;
}

/** Lists come paginated ({results, count, next}) or plain; this returns the items of every page. */
async function all(url, query) {
  let data = await request("GET", url, { query });
  if (Array.isArray(data)) return data;
  const items = [...(data.results || [])];
  while (data.next) {
    data = await request("GET", data.next);
    items.push(...(data.results || []));
  }
  return items;
}

/** One page of a paginated list: {results, count, next, previous}. */
async function page(url, query) {
  const data = await request("GET", url, { query });
  return Array.isArray(data) ? { results: data, count: data.length, next: null, previous: null } : data;
}

/** Upload with progress (fetch has no upload progress): resolves with the parsed body. */
function upload(url, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = { error: xhr.responseText.slice(0, 200) };
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, (data && data.error) || `${xhr.status}`, data && data.details));
    };
    xhr.onerror = () => reject(new ApiError(0, "network error"));
    xhr.send(form);
  });
}

export const api = {
  // auth
  login: (username, password) => request("POST", "/api/auth/login/", { json: { username, password } }),
  logout: () => request("POST", "/api/auth/logout/"),
  me: () => request("GET", "/api/auth/me/"),

  // projects and images
  projects: () => all("/api/projects/"),
  project: (id) => request("GET", `/api/projects/${id}/`),
  createProject: (body) => request("POST", "/api/projects/", { json: body }),
  stats: (id) => request("GET", `/api/projects/${id}/stats/`),
  images: (projectId, query) => page(`/api/projects/${projectId}/images/`, query),
  pageAt: (url) => page(url), // the `next` link of any paginated list
  image: (id) => request("GET", `/api/images/${id}/`),
  updateImage: (id, body) => request("PATCH", `/api/images/${id}/`, { json: body }),
  uploadImages: (projectId, files, { split, state } = {}, onProgress) => {
    const form = new FormData();
    for (const f of files) form.append("files", f, f.name);
    if (split) form.append("split", split);
    if (state) form.append("state", state);
    return upload(`/api/projects/${projectId}/images/`, form, onProgress);
  },
  imageFileUrl: (id) => `/api/images/${id}/file`,
  thumbnailUrl: (id) => `/api/images/${id}/thumbnail`,

  // annotations
  labelClasses: (projectId) => all(`/api/projects/${projectId}/label-classes/`),
  annotations: (imageId) => request("GET", `/api/images/${imageId}/annotations/`),
  saveAnnotations: (imageId, payload) => request("PUT", `/api/images/${imageId}/annotations/`, { json: payload }),
  // Labelling aids: kind is "paint" | "box" | "superpixel"; the answer is {polygons} (nothing saved).
  annotationTool: (imageId, kind, body) => request("POST", `/api/images/${imageId}/annotation-tools/${kind}/`, { json: body }),
  annotationQueue: (projectId) => request("GET", `/api/projects/${projectId}/annotation-queue/`),
  modelArtifactUrl: (id) => `/api/model-versions/${id}/artifact`,
  startImport: (projectId, file, format, onProgress) => {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("format", format);
    return upload(`/api/projects/${projectId}/imports/`, form, onProgress);
  },
  startExport: (projectId, format) => request("POST", `/api/projects/${projectId}/exports/`, { json: { format } }),

  // jobs, training, model versions
  pipelines: () => all("/api/pipelines/"),
  jobs: (projectId, query) => all(`/api/projects/${projectId}/jobs/`, query),
  jobsPage: (projectId, query) => page(`/api/projects/${projectId}/jobs/`, query),
  trainingJobs: (projectId) => page(`/api/projects/${projectId}/training-jobs/`).then((d) => d.results),
  startTraining: (projectId, pipeline, config, activate = false, preset = null, extra = {}) =>
    request("POST", `/api/projects/${projectId}/training-jobs/`, { json: { pipeline, preset, config, activate, ...extra } }),
  startInference: (projectId, body = {}) => request("POST", `/api/projects/${projectId}/inference-jobs/`, { json: body }),
  job: (id, { logFrom } = {}) => request("GET", `/api/jobs/${id}/`, { query: { log_from: logFrom } }),
  cancelJob: (id) => request("POST", `/api/jobs/${id}/cancel`),
  modelVersions: (projectId) => all(`/api/projects/${projectId}/model-versions/`),
  modelVersion: (id) => request("GET", `/api/model-versions/${id}/`),
  activateModel: (id) => request("POST", `/api/model-versions/${id}/activate`),
  // thresholds: {threshold?, region_threshold?} (image and region threshold)
  setThresholds: (id, thresholds) => request("PATCH", `/api/model-versions/${id}/`, { json: thresholds }),
  evaluateModel: (id) => request("POST", `/api/model-versions/${id}/evaluate`),
  metricCatalogue: () => request("GET", "/api/metrics/"),
  retrainPolicy: (projectId) => request("GET", `/api/projects/${projectId}/retrain-policy/`),
  saveRetrainPolicy: (projectId, body) => request("PUT", `/api/projects/${projectId}/retrain-policy/`, { json: body }),

  // review
  reviewQueue: (projectId, query) => page(`/api/projects/${projectId}/review-queue/`, query),
  imagePredictions: (imageId) => all(`/api/images/${imageId}/predictions/`),
  heatmapUrl: (id) => `/api/predictions/${id}/heatmap.png`,
  reviewNext: (projectId) => request("POST", `/api/projects/${projectId}/review-queue/next`),
  review: (predictionId, verdict, comment) =>
    request("POST", `/api/predictions/${predictionId}/review`, { json: { verdict, comment } }),
  undoReview: (reviewId) => request("DELETE", `/api/reviews/${reviewId}/`),
  prediction: (id) => request("GET", `/api/predictions/${id}/`),
};
