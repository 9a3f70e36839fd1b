import { api } from "../api.js";
import { h, message } from "../dom.js";

export async function render(root, { navigate, query, refreshMe }) {
  const error = h("div", { "aria-live": "assertive" });
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button.primary", { type: "submit" }, "Log in");
  const form = h(
    "form.card.login",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        error.replaceChildren();
        try {
          await api.login(username.value, password.value);
          await refreshMe();
          const next = query.get("next");
          navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
        } catch (err) {
          error.replaceChildren(message(err.status === 400 || err.status === 401 || err.status === 403 ? "Wrong username or password." : err.message, "error"));
          submit.disabled = false;
          password.select();
        }
      },
    },
    h("h1", {}, "Log in"),
    h("label.field", { for: "username" }, h("span", {}, "Username"), username),
    h("label.field", { for: "password" }, h("span", {}, "Password"), password),
    error,
    submit,
  );
  document.getElementById("header").replaceChildren(h("span.brand", {}, "Anomaly inspection"));
  root.append(form);
  username.focus();
}
