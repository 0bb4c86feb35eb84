// Overview: cluster nodes and resources, Serve applications, the reconciler, request rates.
"use strict";
(() => {
  const { el, api, card, table, badge, kv, every, mount } = Console;
  let previous = null;

  /** Sum Prometheus samples by metric and one label (text exposition format). */
  function scrape(text) {
    const sums = new Map();
    for (const line of text.split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const m = line.match(/^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+([-+\deE.naNIf]+)/);
      if (!m) continue;
      const [, name, , labels, value] = m;
      if (!["platform_api_requests_total", "nv_inference_request_success", "nv_inference_request_failure", "ts_inference_requests_total"].includes(name)) continue;
      const lm = (labels || "").match(/(?:route|model|model_name)="([^"]*)"/);
      const key = `${name}|${lm ? lm[1] : ""}`;
      sums.set(key, (sums.get(key) || 0) + Number(value));
    }
    return sums;
  }

  function rates(sums, now) {
    const rows = [];
    for (const [key, value] of sums) {
      const [metric, label] = key.split("|");
      let rate = null;
      if (previous && previous.sums.has(key)) rate = (value - previous.sums.get(key)) / ((now - previous.at) / 1000);
      rows.push({ metric, label, value, rate });
    }
    rows.sort((a, b) => (b.rate ?? -1) - (a.rate ?? -1) || b.value - a.value);
    return rows;
  }

  function resource(node, key) { return node.resources_total && key in node.resources_total ? node.resources_total[key] : 0; }

  async function refresh() {
    const [status, health, metrics] = await Promise.all([
      api("GET", "/status"),
      api("GET", "/healthz").then(() => "ok", (err) => err.message),
      api("GET", "/metrics", { text: true }),
    ]);
    const now = Date.now();
    const sums = scrape(metrics);
    const rateRows = rates(sums, now);
    previous = { sums, at: now };
    const nodes = status.ray.nodes || [];
    const apps = status.applications || [];
    const requested = { CPU: 0, GPU: 0 };
    const totals = { CPU: 0, GPU: 0 };
    nodes.filter((n) => n.alive).forEach((n) => { totals.CPU += resource(n, "CPU"); totals.GPU += resource(n, "GPU"); });
    for (const n of nodes) {
      if (n.resources_available) {
        requested.CPU += resource(n, "CPU") - (n.resources_available.CPU || 0);
        requested.GPU += resource(n, "GPU") - (n.resources_available.GPU || 0);
      }
    }
    const hasAvailable = nodes.some((n) => n.resources_available);
    const rec = status.reconciler;
    mount(
      el("div", { class: "grid" },
        card("Cluster",
          el("div", {},
            el("span", { class: "stat" }, el("b", { id: "stat-nodes" }, String(nodes.filter((n) => n.alive).length)), "nodes alive"),
            el("span", { class: "stat" }, el("b", { id: "stat-cpus" }, hasAvailable ? `${requested.CPU} / ${totals.CPU}` : String(totals.CPU)), hasAvailable ? "CPUs used / total" : "CPUs"),
            el("span", { class: "stat" }, el("b", { id: "stat-gpus" }, hasAvailable ? `${requested.GPU} / ${totals.GPU}` : String(totals.GPU)), hasAvailable ? "GPUs used / total" : "GPUs"),
            el("span", { class: "stat" }, el("b", { id: "stat-apps" }, String(apps.length)), "Serve applications"),
            el("span", { class: "stat" }, el("b", { id: "stat-health" }, health), "control plane + database"),
          ),
          status.ray.reachable ? null : el("p", { class: "error" }, `Ray unreachable: ${status.ray.error}`),
          table([
            { title: "node", value: (n) => n.node_id.slice(0, 12) },
            { title: "address", value: (n) => n.address },
            { title: "alive", value: (n) => badge(n.alive ? "true" : "false") },
            { title: "CPU", num: true, value: (n) => String(resource(n, "CPU")) },
            { title: "GPU", num: true, value: (n) => String(resource(n, "GPU")) },
            { title: "memory GiB", num: true, value: (n) => (resource(n, "memory") / 2 ** 30).toFixed(1) },
            { title: "free CPU / GPU", num: true, value: (n) => (n.resources_available ? `${n.resources_available.CPU ?? 0} / ${n.resources_available.GPU ?? 0}` : "—") },
          ], nodes, { id: "nodes-table", empty: "no nodes" }),
        ),
        card("Reconciler",
          rec ? kv(Object.entries(rec).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)])) : el("p", { class: "muted", id: "reconciler-none" }, "no pass yet on this replica"),
        ),
      ),
      card("Serve applications",
        table([
          { title: "application", value: (a) => a.name },
          { title: "owner", value: (a) => a.owner ?? "" },
          { title: "route", value: (a) => a.route_prefix ?? "" },
          { title: "status", value: (a) => badge(a.status) },
          { title: "replicas", value: (a) => Object.entries(a.deployments || {}).map(([d, info]) => `${d}: ${Object.entries(info.replicas || {}).map(([s, c]) => `${c} ${s}`).join(", ") || info.status}`).join("; ") },
          { title: "message", value: (a) => a.message ?? "" },
        ], apps, { id: "apps-table", empty: "no applications" }),
      ),
      card("Request rates (from /metrics)",
        el("p", { class: "muted" }, previous && rateRows.some((r) => r.rate !== null) ? "per second over the last refresh (5 s)" : "rates appear after the next refresh (5 s)"),
        table([
          { title: "metric", value: (r) => r.metric },
          { title: "route / model", value: (r) => r.label },
          { title: "total", num: true, value: (r) => String(r.value) },
          { title: "per s", num: true, value: (r) => (r.rate === null ? "—" : r.rate.toFixed(2)) },
        ], rateRows.slice(0, 30), { id: "rates-table", empty: "no requests counted yet" }),
      ),
    );
  }

  every(5000, refresh);
})();
