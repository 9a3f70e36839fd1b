// Images to annotate: the images a label would help most, best first, each with the
// reason (the active model is unsure about it, it scores high, or it is not scored yet).
// Test images never appear: they are kept for measuring models, not for training them.
import { api } from "../api.js";
import { h, message } from "../dom.js";
import { can } from "../roles.js";

const KIND_LABEL = { unsure: "model unsure", high: "high score", low: "low score", unscored: "not scored" };

export async function render(root, { project, role }) {
  const page = h("section.page.annotate-queue");
  root.append(page);
  page.append(h("div.row", {}, h("h1", {}, "Images to annotate"), h("span.spacer"),
    h("a.button", { href: `/projects/${project.id}/images/`, "data-link": true }, "All images")));
  const intro = h("p.muted", { id: "queue-intro" });
  const body = h("div", { id: "annotate-queue", "aria-live": "polite" }, h("p.muted", {}, "Loading…"));
  page.append(intro, body);
  let data;
  try {
    data = await api.annotationQueue(project.id);
  } catch (e) {
    body.replaceChildren(message(e.message, "error"));
    return;
  }
  const mv = data.model_version;
  intro.textContent = mv
    ? `Ordered by how much a label would help model v${mv.number} (${mv.pipeline}): first the images it is unsure about, then the highest scores, then images it has not scored. Test images are never suggested.`
    : "No active model yet, so the images come in upload order. Once a model is active, the ones it is unsure about come first. Test images are never suggested.";
  if (!data.results.length) {
    body.replaceChildren(h("div.card.empty-state", { id: "queue-empty" },
      h("h2", {}, "Nothing left to annotate"),
      h("p", {}, "Every image outside the test split is outlined or marked normal."),
      h("div.row", {},
        h("a.button", { href: `/projects/${project.id}/images/`, "data-link": true }, "Browse images"),
        can(role, "manage") ? h("a.button.primary", { href: `/projects/${project.id}/training/`, "data-link": true }, "Train a model on them") : null)));
    return;
  }
  const first = data.results[0];
  const link = (id) => `/projects/${project.id}/images/${id}/annotate/?from=queue`;
  body.replaceChildren(
    h("div.row", { style: "margin-bottom:10px" },
      h("a.button.primary", { id: "start-annotating", href: link(first.image.id), "data-link": true }, "Start with the first ▶"),
      h("span.muted", {}, `${data.count} image${data.count === 1 ? "" : "s"} to annotate`)),
    h("table.queue-table", {},
      h("thead", {}, h("tr", {}, h("th.num", {}, "#"), h("th", {}, ""), h("th", {}, "Image"), h("th.num", {}, "Score"), h("th", {}, "Why"))),
      h("tbody", {}, data.results.map((r, i) => h("tr", { "data-image-id": r.image.id, "data-kind": r.kind },
        h("td.num", {}, i + 1),
        h("td", {}, h("img.queue-thumb", { src: api.thumbnailUrl(r.image.id), alt: "", loading: "lazy", width: 56, height: 56 })),
        h("td", {}, h("a", { href: link(r.image.id), "data-link": true, title: r.image.original_name }, r.image.original_name),
          h("div", {}, h("span.badge", {}, r.image.split), " ", h("span.badge." + r.image.state, {}, r.image.state))),
        h("td.num", {}, r.score == null ? "–" : r.score.toPrecision(3)),
        h("td.reason", {}, h(`span.badge.kind-${r.kind}`, {}, KIND_LABEL[r.kind] || r.kind), " ", r.reason))))));
}
