// Jobs: Torc workflows, a progress bar by status, a paged job table with filters, a job's result,
// the dependency graph of the page, run on Ray and cancel; refreshes while jobs run.
"use strict";
(() => {
  const { el, fill, api, card, table, badge, button, pager, kv, dag, mount, every } = Console;
  const T = "/torc-service/v1";
  const STATUSES = ["uninitialized", "blocked", "ready", "pending", "running", "completed", "failed",
                    "canceled", "terminated", "disabled", "pending_failed"];
  const DONE = ["completed", "failed", "canceled", "terminated"];
  const ACTIVE = ["ready", "pending", "running"];
  const PAGE = 50;
  const params = new URLSearchParams(window.location.hash.slice(1));
  const state = { wfOffset: 0, workflows: [], wfTotal: 0, workflowId: params.get("wf") ? Number(params.get("wf")) : null,
                  status: params.get("status") || "", offset: 0, sortBy: "id", jobs: null, counts: null, runner: null, job: null, result: null };
  const wfBox = el("div", { id: "torc-workflows" });
  const progressBox = el("div", { id: "torc-progress" });
  const jobsBox = el("div", { id: "torc-jobs" });
  const resultBox = el("div", { id: "torc-result" });

  function saveHash() {
    const p = new URLSearchParams();
    if (state.workflowId !== null) p.set("wf", String(state.workflowId));
    if (state.status) p.set("status", state.status);
    history.replaceState(null, "", `#${p.toString()}`);
  }

  async function loadWorkflows() {
    const body = await api("GET", `${T}/workflows`, { query: { offset: state.wfOffset, limit: 20, reverse_sort: "true" } });
    state.workflows = body.items || [];
    state.wfTotal = body.total_count ?? state.workflows.length;
    if (state.workflowId === null && state.workflows.length) state.workflowId = state.workflows[0].id;
    renderWorkflows();
  }

  async function loadCounts() {
    const id = state.workflowId;
    const totals = await Promise.all(STATUSES.map((s) => api("GET", `${T}/jobs`, { query: { workflow_id: id, status: s, limit: 1 } }).then((b) => b.total_count || 0)));
    state.counts = Object.fromEntries(STATUSES.map((s, i) => [s, totals[i]]));
    [state.runner, state.wfStatus] = await Promise.all([
      api("GET", `${T}/workflows/${id}/run_on_ray`).catch((err) => ({ error: err.message })),
      api("GET", `${T}/workflows/${id}/status`).catch(() => null),
    ]);
    renderProgress();
  }

  async function loadJobs() {
    const body = await api("GET", `${T}/jobs`, { query: { workflow_id: state.workflowId, status: state.status, offset: state.offset, limit: PAGE, sort_by: state.sortBy, include_relationships: "true" } });
    state.jobs = body;
    renderJobs();
  }

  async function showJob(job) {
    state.job = job;
    const body = await api("GET", `${T}/results`, { query: { workflow_id: state.workflowId, job_id: job.id, sort_by: "id", reverse_sort: "true", limit: 1 } });
    state.result = (body.items || [])[0] || null;
    renderJobs();
    renderResult();
  }

  async function refresh() {
    if (state.workflowId === null) return;
    await Promise.all([loadCounts(), loadJobs()]);
  }

  async function select(id) {
    state.workflowId = id; state.offset = 0; state.job = null; state.result = null; saveHash();
    renderWorkflows(); renderResult(); await refresh();
  }

  function renderWorkflows() {
    fill(wfBox, card("Torc workflows",
      table([
        { title: "id", num: true, value: (w) => String(w.id) },
        { title: "name", value: (w) => w.name },
        { title: "user", value: (w) => w.user ?? "" },
        { title: "description", value: (w) => w.description ?? "" },
        { title: "", value: (w) => button("Open", () => select(w.id), { id: `open-wf-${w.id}` }) },
      ], state.workflows, { id: "torc-wf-table", key: (w) => String(w.id), selected: (w) => w.id === state.workflowId, empty: "no Torc workflows" }),
      pager(state.wfOffset, state.workflows.length, state.wfTotal, async (o) => { state.wfOffset = o; await loadWorkflows(); }, 20)));
  }

  function renderProgress() {
    const c = state.counts;
    if (!c) return;
    const id = state.workflowId;
    const total = STATUSES.reduce((n, s) => n + c[s], 0);
    const done = DONE.reduce((n, s) => n + c[s], 0);
    const pct = total ? Math.floor((100 * done) / total) : 0;
    const bar = el("div", { class: "progress", id: "progress-bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct },
      STATUSES.filter((s) => c[s]).map((s) => el("span", { class: `s-${s}`, style: null, "data-status": s, title: `${s}: ${c[s]}` })));
    // Widths through the CSSOM (the page's CSP forbids inline style attributes).
    [...bar.children].forEach((seg) => { seg.style.width = `${(100 * c[seg.dataset.status]) / total}%`; });
    const runner = state.runner && !state.runner.error ? state.runner : null;
    fill(progressBox, card(`Workflow ${id}: progress`,
      el("div", { class: "toolbar" },
        el("b", { id: "progress-pct" }, `${pct}%`), el("span", { class: "muted", id: "progress-text" }, `${done} of ${total} jobs done`),
        state.wfStatus && state.wfStatus.is_canceled ? el("span", { class: "badge bad", id: "wf-canceled" }, "workflow canceled") : null,
        state.wfStatus ? el("span", { class: "muted", id: "wf-run" }, `run ${state.wfStatus.run_id}`) : null,
        button("Initialize jobs", async () => { await api("POST", `${T}/workflows/${id}/initialize_jobs`, { json: {} }); await refresh(); }, { id: "initialize", done: "jobs initialized" }),
        button("Run on Ray", async () => { await api("POST", `${T}/workflows/${id}/run_on_ray`, { json: {} }); await refresh(); }, { id: "run-on-ray", primary: true, done: "runner started" }),
        button("Cancel workflow", async () => { await api("PUT", `${T}/workflows/${id}/cancel`, { json: {} }); await refresh(); },
          { danger: true, confirm: `Cancel workflow ${id}? Running jobs are terminated.`, id: "cancel-wf", done: "workflow canceled" })),
      bar,
      el("div", { class: "legend" }, STATUSES.filter((s) => c[s]).map((s) => el("span", { "data-count": s }, el("i", { class: `s-${s}` }), `${s} ${c[s]}`))),
      runner ? el("p", { class: "muted", id: "runner-state" }, `Ray runner: ${Object.entries(runner).filter(([, v]) => typeof v !== "object").map(([k, v]) => `${k}=${v}`).join(", ")}`) : null));
  }

  function renderJobs() {
    const body = state.jobs;
    if (!body) return;
    const jobs = body.items || [];
    const filter = el("select", { id: "status-filter" }, el("option", { value: "" }, "all statuses"),
      STATUSES.map((s) => el("option", { value: s, selected: s === state.status }, s)));
    filter.addEventListener("change", async () => { state.status = filter.value; state.offset = 0; saveHash(); await loadJobs(); });
    const sort = el("select", { id: "sort-by" }, ["id", "name", "status"].map((s) => el("option", { value: s, selected: s === state.sortBy }, `sort by ${s}`)));
    sort.addEventListener("change", async () => { state.sortBy = sort.value; await loadJobs(); });
    const ids = new Set(jobs.map((j) => j.id));
    const edges = jobs.flatMap((j) => (j.depends_on_job_ids || []).filter((d) => ids.has(d)).map((d) => [d, j.id]));
    const names = new Map(jobs.map((j) => [j.id, j.name]));
    fill(jobsBox, card(`Jobs of workflow ${state.workflowId}`,
      el("div", { class: "toolbar" }, filter, sort, el("span", { class: "muted" }, `${body.total_count ?? jobs.length} matching`)),
      table([
        { title: "id", num: true, value: (j) => String(j.id) },
        { title: "name", value: (j) => j.name },
        { title: "status", value: (j) => el("span", { class: "job-status" }, badge(j.status)) },
        { title: "command", value: (j) => el("code", {}, j.command) },
        { title: "depends on", value: (j) => (j.depends_on_job_ids || []).join(", ") },
        { title: "", value: (j) => button("Result", () => showJob(j), { id: `result-${j.id}` }) },
      ], jobs, { id: "jobs-table", key: (j) => String(j.id), selected: (j) => state.job && j.id === state.job.id, empty: "no jobs match" }),
      pager(state.offset, jobs.length, body.total_count ?? jobs.length, async (o) => { state.offset = o; await loadJobs(); }, PAGE),
      el("h3", {}, "Dependency graph (this page)"),
      jobs.length ? dag(jobs.map((j) => j.id), edges, { id: "jobs-dag", label: (id) => `${id} ${names.get(id)}`, nodeClass: (id) => `job-${jobs.find((j) => j.id === id).status}` }) : el("p", { class: "muted" }, "no jobs")));
  }

  function renderResult() {
    if (!state.job) { fill(resultBox); return; }
    const r = state.result;
    fill(resultBox, card(`Job ${state.job.id} ${state.job.name}`,
      r ? [kv([["return code", String(r.return_code)], ["status", r.status ?? ""], ["run", String(r.run_id)], ["attempt", String(r.attempt_id ?? "")],
               ["minutes", String(r.exec_time_minutes ?? "")], ["finished", r.completion_time ?? ""]]),
           el("h3", {}, "stdout"), el("pre", { id: "job-stdout" }, r.stdout ?? ""),
           el("h3", {}, "stderr"), el("pre", { id: "job-stderr" }, r.stderr ?? "")]
        : el("p", { class: "muted", id: "no-result" }, "no result yet")));
  }

  mount(wfBox, progressBox, jobsBox, resultBox);
  (async () => {
    await loadWorkflows();
    saveHash();
    // Poll quickly while something is active, slowly otherwise.
    let idle = 0;
    every(1000, async () => {
      if (state.workflowId === null) return;
      const active = !state.counts || ACTIVE.some((s) => state.counts[s]);
      if (!active && idle++ % 5 !== 0) return;
      if (active) idle = 0;
      await refresh();
      if (state.job && ACTIVE.includes(state.job.status)) {
        const fresh = (state.jobs.items || []).find((j) => j.id === state.job.id);
        if (fresh) await showJob(fresh);
      }
    });
  })().catch(Console.reportError);
})();
