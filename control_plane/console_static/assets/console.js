// Platform console: shared helpers. Every value reaches the page through textContent or an
// attribute set with setAttribute; no markup is ever built from data (no innerHTML).
"use strict";

const Console = (() => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.getAttribute("content") : "";
  const SVG = "http://www.w3.org/2000/svg";

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach((c) => append(node, c)); return; }
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function build(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else if (key === "class") node.setAttribute("class", value);
      else if (key === "value" && "value" in node) node.value = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    children.forEach((c) => append(node, c));
    return node;
  }

  /** An HTML element: el("td", {class: "num"}, "text", childNode, [more]). */
  function el(tag, attrs, ...children) { return build(document.createElement(tag), attrs, children); }

  /** An SVG element (same rules). */
  function svg(tag, attrs, ...children) { return build(document.createElementNS(SVG, tag), attrs, children); }

  class ApiError extends Error {
    constructor(status, message, body) { super(message); this.status = status; this.body = body; }
  }

  /** The message of an error body in any surface's shape (v2, TorchServe, Torc, MLServe). */
  function messageOf(body, status, fallback) {
    if (body && typeof body === "object") {
      if (typeof body.error === "string") return body.error;
      if (body.error && typeof body.error.message === "string") return body.error.message;
      if (typeof body.message === "string") return body.message;
      if (typeof body.detail === "string") return body.detail;
    }
    if (typeof body === "string" && body) return body.slice(0, 500);
    return `${status} ${fallback || "request failed"}`;
  }

  function url(path, query) {
    const u = new URL(path, window.location.origin);
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== null && v !== undefined && v !== "") u.searchParams.set(k, String(v));
    }
    return u.pathname + u.search;
  }

  /** Call the platform's REST API with the session cookie and its CSRF token. */
  async function api(method, path, options = {}) {
    const headers = { "X-CSRF-Token": csrf, Accept: "application/json" };
    let body;
    if (options.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(options.json); }
    else if (options.form !== undefined) body = options.form;
    const response = await fetch(url(path, options.query), {
      method, headers, body, credentials: "same-origin", cache: "no-store",
    });
    if (options.text && response.ok) return response.text();
    const text = await response.text();
    let data = text;
    try { data = text ? JSON.parse(text) : null; } catch (_) { /* plain text body */ }
    if (!response.ok) throw new ApiError(response.status, messageOf(data, response.status, response.statusText), data);
    return data;
  }

  /** Upload FormData with upload progress (fetch has none); resolves with the JSON body. */
  function upload(path, form, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded, e.total); });
      xhr.addEventListener("load", () => {
        let data = xhr.responseText;
        try { data = JSON.parse(xhr.responseText); } catch (_) { /* keep text */ }
        if (xhr.status >= 200 && xhr.status < 300) resolve(data);
        else reject(new ApiError(xhr.status, messageOf(data, xhr.status, xhr.statusText), data));
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, "network error during upload", null)));
      xhr.send(form);
    });
  }

  function flash(message, kind = "error") {
    const box = document.getElementById("flash");
    const msg = el("div", { class: `msg ${kind}` }, message);
    box.replaceChildren(msg);
    if (kind !== "error") setTimeout(() => msg.remove(), 4000);
  }

  function reportError(err) {
    if (err instanceof ApiError && err.status === 401) {
      flash(`${err.message} — your session may have expired; log in again.`);
    } else {
      flash(err && err.message ? err.message : String(err));
    }
  }

  /** A button running an async action; confirmation first when `confirm` is given. */
  function button(label, action, opts = {}) {
    const b = el("button", { type: "button", class: opts.danger ? "danger" : (opts.primary ? "primary" : null), id: opts.id, title: opts.title });
    b.textContent = label;
    b.addEventListener("click", async () => {
      if (opts.confirm && !window.confirm(opts.confirm)) return;
      b.disabled = true;
      try { await action(); if (opts.done) flash(opts.done, "info"); } catch (err) { reportError(err); } finally { b.disabled = false; }
    });
    return b;
  }

  function badge(state) {
    const s = String(state ?? "").toUpperCase();
    let kind = "";
    if (["READY", "RUNNING", "HEALTHY", "OK", "COMPLETED", "TRUE"].includes(s)) kind = "ok";
    else if (["UNAVAILABLE", "FAILED", "DEPLOY_FAILED", "UNHEALTHY", "MISSING", "FALSE"].includes(s)) kind = "bad";
    else if (s) kind = "warn";
    return el("span", { class: `badge ${kind}` }, String(state ?? ""));
  }

  /** A table: columns [{title, value(row) -> node|string, num}], rows [..]. */
  function table(columns, rows, opts = {}) {
    const head = el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : null }, c.title)));
    const body = rows.map((row) => {
      const tr = el("tr", { "data-key": opts.key ? opts.key(row) : null }, columns.map((c) => el("td", { class: c.num ? "num" : null }, c.value(row))));
      if (opts.selected && opts.selected(row)) tr.classList.add("selected");
      return tr;
    });
    if (!rows.length) body.push(el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, opts.empty || "nothing here")));
    return el("table", { id: opts.id }, el("thead", {}, head), el("tbody", {}, body));
  }

  /** Prev/next paging controls: "1–50 of 1000". */
  function pager(offset, count, total, onPage, limit) {
    const prev = button("‹ Prev", () => onPage(Math.max(0, offset - limit)), { title: "previous page" });
    const next = button("Next ›", () => onPage(offset + limit), { title: "next page" });
    prev.disabled = offset <= 0;
    next.disabled = offset + count >= total;
    const first = total ? offset + 1 : 0;
    return el("div", { class: "pager" }, prev, el("span", { class: "muted page-info" }, `${first}–${offset + count} of ${total}`), next);
  }

  function card(title, ...children) { return el("section", { class: "card" }, el("h2", {}, title), ...children); }

  function kv(pairs) {
    return el("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "")]));
  }

  function json(value) { return el("pre", {}, JSON.stringify(value, null, 2)); }

  /** Draw a DAG as SVG: nodes [names], edges [[from, to]]; layered by longest path. */
  function dag(nodes, edges, opts = {}) {
    const level = new Map(nodes.map((n) => [n, 0]));
    for (let i = 0; i < nodes.length; i += 1) {
      let changed = false;
      for (const [a, b] of edges) {
        if (level.has(a) && level.has(b) && level.get(b) < level.get(a) + 1) { level.set(b, level.get(a) + 1); changed = true; }
      }
      if (!changed) break;
    }
    const columns = new Map();
    for (const n of nodes) { const l = level.get(n); if (!columns.has(l)) columns.set(l, []); columns.get(l).push(n); }
    const W = 150; const H = 30; const GX = 60; const GY = 16;
    const pos = new Map();
    let rows = 1;
    for (const [l, names] of columns) { names.forEach((n, i) => pos.set(n, [10 + l * (W + GX), 10 + i * (H + GY)])); rows = Math.max(rows, names.length); }
    const width = 20 + columns.size * (W + GX); const height = 20 + rows * (H + GY);
    const root = svg("svg", { class: "dag", viewBox: `0 0 ${width} ${height}`, height: Math.min(height, 600), id: opts.id, role: "img" });
    for (const [a, b] of edges) {
      if (!pos.has(a) || !pos.has(b)) continue;
      const [x1, y1] = pos.get(a); const [x2, y2] = pos.get(b);
      root.appendChild(svg("line", { x1: x1 + W, y1: y1 + H / 2, x2, y2: y2 + H / 2, "data-edge": `${a}->${b}` }));
    }
    for (const n of nodes) {
      const [x, y] = pos.get(n);
      const label = opts.label ? opts.label(n) : String(n);
      const g = svg("g", { "data-node": String(n), class: opts.nodeClass ? opts.nodeClass(n) : null });
      g.appendChild(svg("rect", { x, y, width: W, height: H, rx: 4 }));
      g.appendChild(svg("text", { x: x + 8, y: y + H / 2 + 4 }, label.length > 22 ? `${label.slice(0, 21)}…` : label));
      g.appendChild(svg("title", {}, label));
      root.appendChild(g);
    }
    return root;
  }

  /** Run `fn` now and every `ms` while the tab is visible; returns a stop function. */
  function every(ms, fn) {
    let stopped = false;
    let timer = null;
    const tick = async () => {
      if (stopped) return;
      if (!document.hidden) { try { await fn(); } catch (err) { reportError(err); } }
      if (!stopped) timer = setTimeout(tick, ms);
    };
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  }

  /** Replace a node's children (null/false skipped, arrays flattened, strings as text). */
  function fill(node, ...children) { node.replaceChildren(); append(node, children); return node; }

  function mount(...children) { fill(document.getElementById("app"), ...children); }

  const enc = encodeURIComponent;

  return { el, svg, fill, api, upload, flash, reportError, button, badge, table, pager, card, kv, json, dag, every, mount, enc, ApiError, csrf };
})();
