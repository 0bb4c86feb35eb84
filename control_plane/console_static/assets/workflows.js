// Workflows: TorchServe workflows with their DAG drawn, scale and unregister.
"use strict";
(() => {
  const { el, fill, api, card, table, button, kv, dag, flash, mount, enc } = Console;
  const state = { tokens: [""], page: 0, items: [], next: null, selected: null, detail: null };
  const listBox = el("div", { id: "wf-list" });
  const detailBox = el("div", { id: "wf-detail" });

  /** Parse TorchServe's Java-map DAG text, e.g. "{pre=[m1, m2], m1=[post]}". */
  function parseDag(text) {
    const nodes = new Set();
    const edges = [];
    const re = /([^{}=,\s][^=]*?)=\[([^\]]*)\]/g;
    let m;
    while ((m = re.exec(text || "")) !== null) {
      const from = m[1].trim();
      nodes.add(from);
      for (const to of m[2].split(",").map((s) => s.trim()).filter(Boolean)) { nodes.add(to); edges.push([from, to]); }
    }
    return { nodes: [...nodes], edges };
  }

  async function loadList() {
    const body = await api("GET", "/workflows", { query: { limit: 20, next_page_token: state.tokens[state.page] } });
    state.items = body.workflows || [];
    state.next = body.nextPageToken ?? null;
    renderList();
  }

  async function show(name) {
    state.selected = name;
    const body = await api("GET", `/workflows/${enc(name)}`);
    state.detail = Array.isArray(body) ? body[0] : body;
    renderList();
    renderDetail();
  }

  function renderDetail() {
    const d = state.detail;
    if (!d) { fill(detailBox); return; }
    const graph = parseDag(d.workflowDag);
    const min = el("input", { type: "number", min: 0, value: d.minWorkers, id: "wf-min", size: 4 });
    const max = el("input", { type: "number", min: 0, value: d.maxWorkers, id: "wf-max", size: 4 });
    fill(detailBox, card(`Workflow ${d.workflowName}`,
      kv([["archive", d.workflowUrl], ["workers", `min ${d.minWorkers}, max ${d.maxWorkers}`], ["batch size", String(d.batchSize)],
          ["max batch delay", String(d.maxBatchDelay)], ["DAG", d.workflowDag]]),
      el("h3", {}, `DAG (${graph.nodes.length} nodes, ${graph.edges.length} edges)`),
      dag(graph.nodes, graph.edges, { id: "wf-dag" }),
      el("div", { class: "toolbar" }, "min", min, "max", max,
        button("Scale", async () => {
          await api("PUT", `/workflows/${enc(d.workflowName)}`, { query: { min_worker: min.value, max_worker: max.value } });
          flash(`scaled ${d.workflowName}`, "info"); await show(d.workflowName);
        }, { id: "wf-scale" }),
        button("Unregister", async () => {
          await api("DELETE", `/workflows/${enc(d.workflowName)}`);
          flash(`unregistered ${d.workflowName}`, "info"); state.selected = null; state.detail = null; renderDetail(); await loadList();
        }, { danger: true, confirm: `Unregister workflow ${d.workflowName}? Its applications are deleted.`, id: "wf-unregister" }))));
  }

  function renderList() {
    const prev = button("‹ Prev", async () => { state.page -= 1; await loadList(); });
    const next = button("Next ›", async () => { state.tokens[state.page + 1] = state.next; state.page += 1; await loadList(); });
    prev.disabled = state.page === 0; next.disabled = state.next === null;
    fill(listBox, card("TorchServe workflows",
      table([
        { title: "name", value: (w) => w.workflowName },
        { title: "archive", value: (w) => w.workflowUrl },
        { title: "", value: (w) => button("Show", () => show(w.workflowName), { id: `wf-show-${w.workflowName}` }) },
      ], state.items, { id: "wf-table", key: (w) => w.workflowName, selected: (w) => w.workflowName === state.selected, empty: "no workflows registered" }),
      el("div", { class: "pager" }, prev, el("span", { class: "muted" }, `page ${state.page + 1}`), next)));
  }

  mount(listBox, detailBox);
  loadList().catch(Console.reportError);
})();
