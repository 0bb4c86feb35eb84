// MLServe: Triton servers and their models, the versioned store (chunked uploads with progress),
// users (create, roles, rotate key: the key is shown once) and apps with routes and consumers.
"use strict";
(() => {
  const { el, fill, api, upload, card, table, badge, button, pager, kv, flash, mount, enc, reportError } = Console;
  const CHUNK = 256 * 1024;
  const PAGE = 50;
  const state = { tritons: [], models: [], modelOffset: 0, users: [], apps: [], app: null, key: null };
  const boxes = { tritons: el("div", { id: "ml-tritons" }), store: el("div", { id: "ml-store" }),
                  users: el("div", { id: "ml-users" }), apps: el("div", { id: "ml-apps" }) };

  const uploadBar = { progress: el("progress", { id: "upload-progress", max: 1, value: 0 }),
                      pct: el("span", { id: "upload-pct", class: "muted" }, "") };

  function field(label, input) { return el("label", {}, `${label} `, input); }

  async function loadTritons() { state.tritons = (await api("GET", "/api/tritons")).tritons || []; renderTritons(); }
  async function loadModels() { state.models = (await api("GET", "/api/models")).models || []; renderStore(); }
  // Turn the store's page to the one holding ``name`` (the store is paged 50 at a time).
  function showModel(name) {
    const index = state.models.findIndex((m) => m.name === name);
    if (index >= 0) { state.modelOffset = Math.floor(index / PAGE) * PAGE; renderStore(); }
  }
  async function loadUsers() { state.users = (await api("GET", "/api/users")).users || []; renderUsers(); }
  async function loadApps() {
    state.apps = (await api("GET", "/api/apps")).apps || [];
    if (state.app) state.app = state.apps.find((a) => a.id === state.app.id) || null;
    renderApps();
  }

  function renderTritons() {
    fill(boxes.tritons, card("Triton servers",
      table([
        { title: "id", num: true, value: (t) => String(t.id) },
        { title: "name", value: (t) => t.name },
        { title: "address", value: (t) => `${t.host}:${t.port}` },
        { title: "state", value: (t) => badge(t.state) },
        { title: "GPUs", num: true, value: (t) => String(t.gpus) },
        { title: "models", value: (t) => (t.models || []).join(", ") },
      ], state.tritons, { id: "tritons-table", key: (t) => String(t.id) })));
  }

  async function sha256Hex(blob) {
    if (!window.crypto || !crypto.subtle) throw new Error("chunked uploads need a secure context (https or localhost) for the SHA-256 check");
    const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** Upload one file as a new version in CHUNK-sized parts (offset, then check on the last). */
  async function uploadVersion(model, file, path, progress, label) {
    const check = `sha256:${await sha256Hex(file)}`;
    let version = null;
    let offset = 0;
    do {
      const part = file.slice(offset, offset + CHUNK);
      const last = offset + part.size >= file.size;
      const form = new FormData();
      if (version !== null) form.append("version", String(version));
      form.append("offset", String(offset));
      if (last) form.append("check", check);
      form.append("Files[]", part, path);
      const base = offset;
      const body = await upload(`/api/models/${enc(model)}/versions`, form, (sent) => {
        progress.value = Math.min(file.size, base + sent); label.textContent = `${Math.floor((100 * progress.value) / (file.size || 1))}%`;
      });
      version = body.version ?? version;
      offset += part.size;
      progress.value = offset;
      label.textContent = `${Math.floor((100 * offset) / (file.size || 1))}%`;
    } while (offset < file.size);
    return version;
  }

  function renderStore() {
    const name = el("input", { id: "new-model-name", placeholder: "model name" });
    const files = el("input", { id: "new-model-files", type: "file", multiple: true });
    const create = button("Create model", async () => {
      const form = new FormData();
      form.append("name", name.value.trim());
      for (const f of files.files) form.append("files[]", f, f.webkitRelativePath ? f.webkitRelativePath.split("/").slice(1).join("/") : f.name);
      const created = name.value.trim();
      await upload("/api/models", form);
      flash(`created ${created}`, "info");
      await loadModels();
      showModel(created);
    }, { id: "create-model", primary: true });
    const target = el("select", { id: "upload-model" }, state.models.map((m) => el("option", { value: m.name }, m.name)));
    const vfile = el("input", { id: "upload-file", type: "file" });
    const vpath = el("input", { id: "upload-path", placeholder: "path in the version, e.g. model.py", value: "model.py" });
    const { progress, pct } = uploadBar;  // kept across re-renders: it shows the last upload
    const send = button("Upload version", async () => {
      const file = vfile.files[0];
      if (!file) throw new Error("choose a file first");
      progress.max = file.size || 1; progress.value = 0;
      const version = await uploadVersion(target.value, file, vpath.value.trim() || file.name, progress, pct);
      const uploadedTo = target.value;
      flash(`uploaded version ${version} of ${uploadedTo}`, "info");
      await loadModels();
      showModel(uploadedTo);
    }, { id: "upload-version", primary: true });
    const page = state.models.slice(state.modelOffset, state.modelOffset + PAGE);
    const tritonChoice = (m, verb) => button(verb === "load" ? "Load" : "Unload", async () => {
      await api("POST", `/api/models/${enc(m.name)}/${verb}`, { json: { triton_id: 0 } });
      flash(`${verb}ed ${m.name} on the built-in server`, "info"); await Promise.all([loadModels(), loadTritons()]);
    }, verb === "load" ? { id: `ml-load-${m.name}` } : { danger: true, confirm: `Unload ${m.name} from the built-in server?`, id: `ml-unload-${m.name}` });
    fill(boxes.store, card("Model store",
      el("div", { class: "toolbar" }, field("name", name), field("files (config.pbtxt, 1/model.py, or one .zip/.tar.gz)", files), create),
      table([
        { title: "id", num: true, value: (m) => String(m.id) },
        { title: "name", value: (m) => m.name },
        { title: "versions", value: (m) => (m.versions || []).map((v) => (typeof v === "object" ? v.version : v)).join(", ") },
        { title: "state", value: (m) => badge(m.state) },
        { title: "inferences", num: true, value: (m) => String(m.inference_count ?? 0) },
        { title: "", value: (m) => el("div", { class: "actions" }, tritonChoice(m, "load"), tritonChoice(m, "unload"),
            button("Delete", async () => { await api("DELETE", `/api/models/${enc(m.name)}`); flash(`deleted ${m.name}`, "info"); await loadModels(); },
              { danger: true, confirm: `Delete model ${m.name} and all its versions? Its routes go too.` })) },
      ], page, { id: "store-table", key: (m) => m.name, empty: "the store is empty" }),
      pager(state.modelOffset, page.length, state.models.length, (o) => { state.modelOffset = o; renderStore(); }, PAGE),
      el("h3", {}, "New version (chunked upload, 256 KiB per request, SHA-256 checked)"),
      el("div", { class: "toolbar" }, field("model", target), field("file", vfile), field("as", vpath), send, progress, pct)));
  }

  function showKey(title, key) {
    state.key = { title, key };
    renderUsers();
  }

  function renderUsers() {
    const name = el("input", { id: "new-user-name", placeholder: "name" });
    const password = el("input", { id: "new-user-password", type: "password", placeholder: "password" });
    const role = el("select", { id: "new-user-role" }, el("option", { value: "user" }, "user"), el("option", { value: "admin" }, "admin"));
    const create = button("Create user", async () => {
      const body = await api("POST", "/api/users", { json: { name: name.value.trim(), password: password.value, role: role.value } });
      showKey(`API key of ${name.value.trim()}`, body.key);
      await loadUsers();
    }, { id: "create-user", primary: true });
    const keyBox = state.key ? el("div", { class: "key-once", id: "key-once" },
      el("b", {}, `${state.key.title} (shown once; copy it now): `), el("code", { id: "new-key" }, state.key.key), " ",
      button("Dismiss", async () => { state.key = null; renderUsers(); })) : null;
    fill(boxes.users, card("Users",
      el("div", { class: "toolbar" }, name, password, role, create), keyBox,
      table([
        { title: "id", num: true, value: (u) => String(u.id) },
        { title: "name", value: (u) => u.name },
        { title: "role", value: (u) => {
            const select = el("select", { "data-user": u.name, class: "role-select" }, ["user", "admin"].map((r) => el("option", { value: r, selected: r === u.role }, r)));
            select.addEventListener("change", async () => {
              try { await api("PATCH", `/api/users/${enc(u.name)}`, { json: { role: select.value } }); flash(`${u.name} is now ${select.value}`, "info"); }
              catch (err) { reportError(err); }
              await loadUsers();
            });
            return select;
          } },
        { title: "key prefix", value: (u) => u.key_prefix ?? "" },
        { title: "apps", value: (u) => (u.apps || []).join(", ") },
        { title: "", value: (u) => el("div", { class: "actions" },
            button("Rotate key", async () => { const b = await api("PATCH", `/api/users/${enc(u.name)}`, { json: { rotate_key: true } }); showKey(`new API key of ${u.name}`, b.key); await loadUsers(); },
              { confirm: `Rotate ${u.name}'s API key? The old key stops working.`, id: `rotate-${u.name}` }),
            button("Delete", async () => { await api("DELETE", `/api/users/${enc(u.name)}`); flash(`deleted ${u.name}`, "info"); await loadUsers(); },
              { danger: true, confirm: `Delete user ${u.name}?`, id: `delete-user-${u.name}` })) },
      ], state.users, { id: "users-table", key: (u) => u.name })));
  }

  function renderApps() {
    const name = el("input", { id: "new-app-name", placeholder: "app name" });
    const create = button("Create app", async () => {
      const body = await api("POST", "/api/apps", { json: { name: name.value.trim() } });
      state.app = { id: body.id }; flash(`created app ${name.value.trim()}`, "info"); await loadApps();
    }, { id: "create-app", primary: true });
    let detail = null;
    const a = state.app;
    if (a && a.name) {
      const model = el("select", { id: "route-model" }, state.models.map((m) => el("option", { value: m.name }, m.name)));
      const consumer = el("select", { id: "consumer-user" }, state.users.map((u) => el("option", { value: u.name }, u.name)));
      detail = card(`App ${a.name}`,
        kv([["url", a.url], ["retries", String(a.retries)], ["upstream", a.host ? `${a.host}:${a.port}` : "wherever the model is loaded"]]),
        el("h3", {}, "Routes"),
        table([
          { title: "model", value: (r) => r.model_name },
          { title: "paths", value: (r) => r.paths.join(", ") },
          { title: "methods", value: (r) => r.methods.join(", ") },
          { title: "url", value: (r) => el("code", { class: "route-url" }, r.url) },
          { title: "", value: (r) => button("Remove", async () => { await api("DELETE", `/api/apps/${enc(a.name)}/routes/${enc(r.model_name)}`); await loadApps(); },
              { danger: true, confirm: `Remove the route to ${r.model_name}?` }) },
        ], a.routes || [], { id: "routes-table", empty: "no routes" }),
        el("div", { class: "toolbar" }, field("model", model),
          button("Add route", async () => { await api("POST", `/api/apps/${enc(a.name)}/routes/${enc(model.value)}`, { json: {} }); await loadApps(); }, { id: "add-route" })),
        el("h3", {}, "Consumers"),
        table([
          { title: "user", value: (c) => c.name },
          { title: "since", value: (c) => c.create_at },
          { title: "", value: (c) => button("Remove", async () => { await api("DELETE", `/api/apps/${enc(a.name)}/consumers/${enc(c.name)}`); await loadApps(); },
              { danger: true, confirm: `Remove consumer ${c.name}?` }) },
        ], a.consumers || [], { id: "consumers-table", empty: "no consumers" }),
        el("div", { class: "toolbar" }, field("user", consumer),
          button("Add consumer", async () => { await api("POST", `/api/apps/${enc(a.name)}/consumers/${enc(consumer.value)}`, { json: {} }); await Promise.all([loadApps(), loadUsers()]); }, { id: "add-consumer" })));
    }
    fill(boxes.apps, card("Apps",
      el("div", { class: "toolbar" }, name, create),
      table([
        { title: "id", num: true, value: (x) => String(x.id) },
        { title: "name", value: (x) => x.name },
        { title: "url", value: (x) => x.url },
        { title: "routes", num: true, value: (x) => String((x.routes || []).length) },
        { title: "consumers", num: true, value: (x) => String((x.consumers || []).length) },
        { title: "", value: (x) => el("div", { class: "actions" },
            button("Open", async () => { state.app = x; renderApps(); }, { id: `open-app-${x.name}` }),
            button("Delete", async () => { await api("DELETE", `/api/apps/${enc(x.name)}`); if (state.app && state.app.id === x.id) state.app = null; await loadApps(); },
              { danger: true, confirm: `Delete app ${x.name} with its routes?` })) },
      ], state.apps, { id: "apps-table", key: (x) => x.name, selected: (x) => a && x.id === a.id, empty: "no apps" })), detail);
  }

  mount(boxes.tritons, boxes.store, boxes.users, boxes.apps);
  Promise.all([loadTritons(), loadModels(), loadUsers()]).then(loadApps).catch(reportError);
})();
