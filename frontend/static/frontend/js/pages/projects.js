import { api } from "../api.js";
import { h, message, fmtDate, inlineCode } from "../dom.js";

export async function render(root, { me, navigate }) {
  const page = h("section.page");
  root.append(page);
  page.append(h("h1", {}, "Projects"));
  const list = h("div.cards", { "aria-busy": "true" });
  page.append(list);
  let projects;
  try {
    projects = await api.projects();
  } catch (e) {
    page.append(message(e.message, "error"));
    return;
  }
  list.removeAttribute("aria-busy");
  if (!projects.length) list.append(message(me.is_staff ? "No projects yet: create one below." : "You are not a member of any project yet. Ask an admin to add you.", "info"));
  for (const p of projects) {
    list.append(
      h("a.card.project-card", { href: `/projects/${p.id}/`, "data-link": true, style: "text-decoration:none;color:inherit" },
        h("h2", {}, p.name),
        h("p.muted", {}, p.description ? inlineCode(p.description) : p.kind || ""),
        h("div.row", {},
          p.role ? h("span.badge", {}, p.role) : null,
          p.image_count != null ? h("span.muted", {}, `${p.image_count} images`) : null,
          p.created_at ? h("span.muted", {}, fmtDate(p.created_at)) : null),
      ),
    );
  }
  if (me.is_staff) {
    const name = h("input", { id: "new-project-name", required: true });
    const kind = h("select", { id: "new-project-kind" }, ["unsupervised", "supervised", "rail", "road-scene"].map((k) => h("option", { value: k }, k)));
    const err = h("div");
    page.append(
      h("h2", {}, "New project"),
      h("form.card.row", {
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const p = await api.createProject({ name: name.value, kind: kind.value });
            navigate(`/projects/${p.id}/`);
          } catch (ex) {
            err.replaceChildren(message(ex.message, "error"));
          }
        },
      }, h("label", { for: "new-project-name" }, "Name"), name, h("label", { for: "new-project-kind" }, "Kind"), kind, h("button.primary", { type: "submit" }, "Create"), err),
    );
  }
}
