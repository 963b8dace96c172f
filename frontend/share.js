// The share dialog: visibility (owner), members and roles (owner), link and embed code.
import { api } from "./api.js";
import { el, notify } from "./ui.js";

const VISIBILITY = {
  private: "Private — only members can open it",
  unlisted: "Unlisted — anyone with the link can view it",
  public: "Public — listed on the home page and searchable",
};
const ROLES = ["viewer", "editor", "owner"];

function copyButton(source, label) {
  return el("button", { type: "button", "aria-label": label, onclick: async () => {
    source.select();
    try {
      await navigator.clipboard.writeText(source.value);
      notify("Copied.", "ok", { timeout: 2000 });
    } catch {
      notify("Press Ctrl+C (or ⌘C) to copy the selected text.");
    }
  } }, "Copy");
}

function visibilitySection(ctx, info) {
  const box = el("fieldset", { class: "visibility" }, el("legend", {}, "Who can see this map"));
  for (const [value, text] of Object.entries(VISIBILITY)) {
    const radio = el("input", { type: "radio", name: "visibility", value, checked: info.visibility === value });
    radio.addEventListener("change", async () => {
      try {
        const updated = await api("PATCH", ctx.base, { json: { visibility: value } });
        ctx.info.visibility = updated.visibility;
        document.getElementById("visibility-badge")?.replaceChildren(updated.visibility);
        notify(`The map is now ${updated.visibility}.`, "ok", { timeout: 2500 });
      } catch (exc) {
        notify(`Cannot change who sees the map: ${exc.message}`, "error");
      }
    });
    box.append(el("label", { class: "field-check" }, radio, el("span", {}, text)));
  }
  return box;
}

function roleSelect(value, label) {
  const select = el("select", { "aria-label": label }, ROLES.map((r) => el("option", { value: r }, r)));
  select.value = value;
  return select;
}

async function membersSection(ctx) {
  const section = el("section", { class: "members" }, el("h3", {}, "Members"));
  const list = el("ul", { class: "member-list" });
  const refresh = async () => {
    const members = await api("GET", `${ctx.base}/members`);
    list.replaceChildren(...members.map((m) => {
      const name = `${m.display_name || m.email}`;
      const select = roleSelect(m.role, `Role of ${name}`);
      select.addEventListener("change", async () => {
        try {
          await api("PATCH", `${ctx.base}/members/${m.user_id}`, { json: { role: select.value } });
          notify(`${name} is now ${select.value}.`, "ok", { timeout: 2500 });
        } catch (exc) {
          select.value = m.role;
          notify(exc.message, "error");
        }
      });
      const removeButton = el("button", { type: "button", class: "icon danger", "aria-label": `Remove ${name}`, title: "Remove", onclick: async () => {
        try {
          await api("DELETE", `${ctx.base}/members/${m.user_id}`);
          await refresh();
        } catch (exc) {
          notify(exc.message, "error");
        }
      } }, "✕");
      const own = m.user_id === ctx.info.owner.id;
      return el("li", {}, el("span", { class: "member-name" }, name, el("small", {}, ` ${m.email}`)),
        own ? el("span", { class: "muted" }, "owner") : select, own ? "" : removeButton);
    }));
  };
  const email = el("input", { type: "email", name: "email", required: true, placeholder: "email@example.com", "aria-label": "E-mail of the person to add" });
  const role = roleSelect("editor", "Role for the new member");
  const form = el("form", { class: "add-member" }, email, role, el("button", { type: "submit" }, "Add"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", `${ctx.base}/members`, { json: { email: email.value.trim(), role: role.value } });
      email.value = "";
      await refresh();
    } catch (exc) {
      notify(`Cannot add the member: ${exc.message}`, "error");
    }
  });
  section.append(list, el("p", { class: "muted" }, "Add someone who already has an account:"), form);
  try {
    await refresh();
  } catch (exc) {
    list.append(el("li", { class: "error" }, exc.message));
  }
  return section;
}

async function fill(ctx, dialog) {
  const info = ctx.info;
  const origin = window.location.origin;
  const link = el("input", { readonly: true, value: `${origin}/m/${info.id}`, id: "share-link", "aria-label": "Link to this map" });
  const embed = el("textarea", { readonly: true, rows: "3", id: "share-embed", "aria-label": "Embed code" },
    `<iframe src="${origin}/m/${info.id}/embed" width="100%" height="450" style="border:0" loading="lazy" title="${info.title.replace(/"/g, "&quot;")}"></iframe>`);
  const body = dialog.querySelector(".dialog-body");
  body.replaceChildren();
  if (info.role === "owner") body.append(visibilitySection(ctx, info));
  else body.append(el("p", {}, `This map is ${info.visibility}.`));
  body.append(
    el("label", { class: "field" }, el("span", {}, "Link"), el("div", { class: "copy-row" }, link, copyButton(link, "Copy link"))),
    el("label", { class: "field" }, el("span", {}, "Embed code"), el("div", { class: "copy-row" }, embed, copyButton(embed, "Copy embed code"))));
  if (info.role === "owner") body.append(await membersSection(ctx));
}

export function initShare(ctx) {
  const open = document.getElementById("open-share");
  const dialog = document.getElementById("share-dialog");
  if (!open || !dialog) return;
  open.hidden = false;
  open.addEventListener("click", async () => {
    await fill(ctx, dialog);
    dialog.showModal();
  });
  dialog.querySelector(".dialog-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
}
