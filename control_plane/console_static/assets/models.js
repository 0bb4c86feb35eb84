// Models: the v2 repository (load/unload, config, stats) and TorchServe models (scale, unregister).
"use strict";
(() => {
  const { el, fill, api, card, table, badge, button, pager, json, kv, flash, mount, enc, every } = Console;
  const PAGE = 50;
  const state = { index: [], filter: "", offset: 0, selected: null, detail: null,
                  ts: { tokens: [""], page: 0, items: [], next: null, selected: null, detail: null } };
  const v2Box = el("div", { id: "v2-section" });
  const tsBox = el("div", { id: "ts-section" });

  async function loadIndex() { state.index = await api("POST", "/v2/repository/index", { json: {} }); renderV2(); }

  /** GET, once more after a pause when the model's route may not have reached this connection. */
  async function getFresh(path) {
    try { return await api("GET", path); } catch (err) {
      if (!(err instanceof Console.ApiError) || ![400, 503].includes(err.status)) throw err;
      await new Promise((resolve) => { setTimeout(resolve, 300); });
      return api("GET", path);
    }
  }

  async function showV2(name) {
    state.selected = name;
    // Sequential: right after a load, an old keep-alive connection may still reach the ingress
    // process that predates the model's route (once); the retry then goes over a fresh one.
    const config = await getFresh(`/v2/models/${enc(name)}/config`).catch((err) => ({ error: err.message }));
    const stats = await getFresh(`/v2/models/${enc(name)}/stats`).catch((err) => ({ error: err.message }));
    state.detail = { config, stats };
    renderV2();
  }

  function statsTable(stats) {
    if (!stats || stats.error || !Array.isArray(stats.model_stats)) return el("p", { class: "error" }, stats ? stats.error || "" : "");
    return table([
      { title: "version", value: (s) => s.version },
      { title: "inferences", num: true, value: (s) => String(s.inference_count ?? 0) },
      { title: "executions", num: true, value: (s) => String(s.execution_count ?? 0) },
      { title: "success", num: true, value: (s) => String(s.inference_stats?.success?.count ?? 0) },
      { title: "fail", num: true, value: (s) => String(s.inference_stats?.fail?.count ?? 0) },
      { title: "last inference", value: (s) => (s.last_inference ? new Date(s.last_inference).toISOString() : "—") },
    ], stats.model_stats, { id: "v2-stats", empty: "no versions" });
  }

  function renderV2() {
    const rows = state.index.filter((m) => !state.filter || m.name.includes(state.filter));
    if (state.offset >= rows.length) state.offset = Math.max(0, rows.length - (rows.length % PAGE || PAGE));
    const page = rows.slice(state.offset, state.offset + PAGE);
    const filter = el("input", { type: "search", placeholder: "filter by name", value: state.filter, id: "v2-filter" });
    filter.addEventListener("change", () => { state.filter = filter.value; state.offset = 0; renderV2(); });
    const detail = state.selected && state.detail
      ? card(`Model ${state.selected}`,
          el("h3", {}, "Statistics (per version)"), statsTable(state.detail.stats),
          el("h3", {}, "Configuration"), state.detail.config.error ? el("p", { class: "error" }, state.detail.config.error) : json(state.detail.config))
      : null;
    fill(v2Box, card("Triton / KServe v2 repository",
      el("div", { class: "toolbar" }, filter, button("Refresh index", loadIndex, { id: "v2-refresh" }),
        el("span", { class: "muted" }, `${rows.length} models`)),
      table([
        { title: "name", value: (m) => m.name },
        { title: "version", value: (m) => m.version ?? "" },
        { title: "state", value: (m) => badge(m.state ?? "UNKNOWN") },
        { title: "reason", value: (m) => m.reason ?? "" },
        { title: "", value: (m) => el("div", { class: "actions" },
            button("Load", async () => { await api("POST", `/v2/repository/models/${enc(m.name)}/load`, { json: {} }); flash(`loaded ${m.name}`, "info"); await loadIndex(); }, { id: `load-${m.name}` }),
            button("Unload", async () => { await api("POST", `/v2/repository/models/${enc(m.name)}/unload`, { json: {} }); flash(`unloaded ${m.name}`, "info"); await loadIndex(); },
              { danger: true, confirm: `Unload model ${m.name}? Its replicas stop serving.`, id: `unload-${m.name}` }),
            button("Details", () => showV2(m.name), { id: `details-${m.name}` })) },
      ], page, { id: "v2-table", key: (m) => m.name, selected: (m) => m.name === state.selected, empty: "the repository is empty" }),
      pager(state.offset, page.length, rows.length, (o) => { state.offset = o; renderV2(); }, PAGE)), detail);
  }

  async function loadTs() {
    const ts = state.ts;
    const body = await api("GET", "/models", { query: { limit: 20, next_page_token: ts.tokens[ts.page] } });
    ts.items = body.models || [];
    ts.next = body.nextPageToken ?? null;
    renderTs();
  }

  async function showTs(name) {
    state.ts.selected = name;
    state.ts.detail = await api("GET", `/models/${enc(name)}`);
    renderTs();
  }

  function renderTs() {
    const ts = state.ts;
    let detail = null;
    if (ts.selected && Array.isArray(ts.detail)) {
      detail = ts.detail.map((d) => {
        const min = el("input", { type: "number", min: 0, value: d.minWorkers, id: "ts-min", size: 4 });
        const max = el("input", { type: "number", min: 0, value: d.maxWorkers, id: "ts-max", size: 4 });
        return card(`TorchServe model ${d.modelName} ${d.modelVersion}`,
          kv([["url", d.modelUrl], ["runtime", d.runtime], ["workers", `${(d.workers || []).length} (min ${d.minWorkers}, max ${d.maxWorkers})`],
              ["batch size", String(d.batchSize)], ["max batch delay", String(d.maxBatchDelay)], ["loaded at startup", String(d.loadedAtStartup)]]),
          table([{ title: "worker", value: (w) => w.id }, { title: "status", value: (w) => badge(w.status) }, { title: "started", value: (w) => w.startTime }],
            d.workers || [], { id: "ts-workers", empty: "no workers" }),
          el("div", { class: "toolbar" }, "min", min, "max", max,
            button("Scale", async () => {
              await api("PUT", `/models/${enc(d.modelName)}/${enc(d.modelVersion)}`, { query: { min_worker: min.value, max_worker: max.value, synchronous: "true" } });
              flash(`scaled ${d.modelName}`, "info"); await showTs(d.modelName);
            }, { id: "ts-scale" }),
            button("Unregister", async () => {
              // TorchServe refuses to delete the default version while others exist; the only
              // version goes with the model's own DELETE.
              const only = ts.detail.length === 1;
              await api("DELETE", only ? `/models/${enc(d.modelName)}` : `/models/${enc(d.modelName)}/${enc(d.modelVersion)}`);
              flash(`unregistered ${d.modelName} ${d.modelVersion}`, "info"); ts.selected = null; await loadTs();
            }, { danger: true, confirm: `Unregister ${d.modelName} ${d.modelVersion}? This deletes its application.`, id: "ts-unregister" })));
      });
    }
    const prev = button("‹ Prev", async () => { ts.page -= 1; await loadTs(); });
    const next = button("Next ›", async () => { ts.tokens[ts.page + 1] = ts.next; ts.page += 1; await loadTs(); });
    prev.disabled = ts.page === 0; next.disabled = ts.next === null;
    fill(tsBox, card("TorchServe models",
      table([
        { title: "name", value: (m) => m.modelName },
        { title: "archive", value: (m) => m.modelUrl },
        { title: "", value: (m) => el("div", { class: "actions" },
            button("Details", () => showTs(m.modelName), { id: `ts-details-${m.modelName}` }),
            button("Unregister", async () => { await api("DELETE", `/models/${enc(m.modelName)}`); flash(`unregistered ${m.modelName}`, "info"); await loadTs(); },
              { danger: true, confirm: `Unregister TorchServe model ${m.modelName}?` })) },
      ], ts.items, { id: "ts-table", key: (m) => m.modelName, empty: "no TorchServe models" }),
      el("div", { class: "pager" }, prev, el("span", { class: "muted" }, `page ${ts.page + 1}`), next)), detail);
  }

  mount(v2Box, tsBox);
  Promise.all([loadIndex(), loadTs()]).catch(Console.reportError);
  // Loading models change state in the background: keep the index fresh without losing the page.
  let first = true;
  every(10000, async () => { if (first) { first = false; return; } await loadIndex(); });
})();
