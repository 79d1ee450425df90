// The videoq admin dashboard: polls /v1/admin/stats with an admin token and draws its figures.
"use strict";

const TOKEN_KEY = "videoq.adminToken";
const POLL_MS = 1500;
const PAGE_SIZE = 20;
const TOAST_MS = 4000;
const PRIORITIES = ["high", "medium", "low"];
const ENGINES = ["manim", "standard"];
const CANCELLABLE = new Set(["queued", "rendering", "retrying"]);
const RETRYABLE = new Set(["failed", "cancelled"]);
const JOB_TYPE_LABELS = { doubt: "Doubt", topic_short: "Topic short", daily_ca: "Daily CA" };

const view = {
  status: "",
  offset: 0,
  timer: null,
  // Each request gets the next number, and a response to an older request is dropped.
  request: 0,
  jobsKey: "",
  throughput: [],
  hover: null,
  chart: null,
  toastTimer: null,
};

function byId(id) {
  return document.getElementById(id);
}

// Builds an element. Strings among the children become text nodes, never HTML.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// Token and requests

function readToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function askForToken(message) {
  clearTimeout(view.timer);
  const error = byId("token-error");
  error.textContent = message || "";
  error.hidden = !message;
  byId("token-dialog").hidden = false;
  byId("token-input").value = "";
  byId("token-input").focus();
}

function acceptToken(event) {
  event.preventDefault();
  const value = byId("token-input").value.trim().replace(/^Bearer\s+/i, "");
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  byId("token-dialog").hidden = true;
  refresh();
}

async function callApi(method, path) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${readToken()}`, Accept: "application/json" },
    cache: "no-store",
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { status: response.status, body };
}

function detailOf(body, fallback) {
  return body && typeof body.detail === "string" ? body.detail : fallback;
}

function statsPath() {
  const query = new URLSearchParams({ limit: PAGE_SIZE, offset: view.offset });
  if (view.status) query.set("status", view.status);
  return `/v1/admin/stats?${query}`;
}

// Polling

function schedule() {
  clearTimeout(view.timer);
  view.timer = setTimeout(refresh, POLL_MS);
}

async function refresh() {
  clearTimeout(view.timer);
  if (!readToken()) {
    askForToken();
    return;
  }
  const request = ++view.request;
  let result;
  try {
    result = await callApi("GET", statsPath());
  } catch {
    if (request !== view.request) return;
    showBanner("The API cannot be reached. Retrying every 1.5 s.");
    schedule();
    return;
  }
  if (request !== view.request) return;

  if (result.status === 200) {
    hideBanner();
    render(result.body);
    schedule();
  } else if (result.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken(`The token was rejected: ${detailOf(result.body, "unauthorized")}.`);
  } else if (result.status === 403) {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken("This token is valid but has no admin role. Enter an admin token.");
  } else if (result.status === 503) {
    const detail = detailOf(result.body, "a backend is down");
    showBanner(`Service unavailable: ${detail}. Figures below are stale; retrying every 1.5 s.`);
    schedule();
  } else {
    const detail = detailOf(result.body, "unexpected response");
    showBanner(`Statistics failed with HTTP ${result.status}: ${detail}.`);
    schedule();
  }
}

function showBanner(message) {
  const banner = byId("banner");
  banner.textContent = message;
  banner.hidden = false;
}

function hideBanner() {
  byId("banner").hidden = true;
}

function showToast(message, isError = false) {
  const toast = byId("toast");
  toast.textContent = message;
  toast.className = isError ? "toast toast-error" : "toast";
  toast.hidden = false;
  clearTimeout(view.toastTimer);
  view.toastTimer = setTimeout(() => {
    toast.hidden = true;
  }, TOAST_MS);
}

// Formatting

function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)} m ${String(whole % 60).padStart(2, "0")} s`;
  const minutes = Math.floor((whole % 3600) / 60);
  return `${Math.floor(whole / 3600)} h ${String(minutes).padStart(2, "0")} m`;
}

function formatClock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

function formatMoment(iso) {
  const moment = new Date(iso);
  const clock = moment.toLocaleTimeString([], { hour12: false });
  if (moment.toDateString() === new Date().toDateString()) return clock;
  return `${moment.toLocaleDateString([], { month: "short", day: "numeric" })} ${clock}`;
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function countCell(count, dataset) {
  return el("td", { class: count === 0 ? "zero" : "", dataset }, String(count));
}

function pill(value, label = value) {
  return el("span", { class: `pill pill-${value}` }, label);
}

// Rendering

function render(stats) {
  byId("updated").textContent = `Updated ${formatClock(stats.generated_at)}`;
  renderPeak(stats);
  renderQueue(stats.queue_depth);
  renderRenders(stats.renders);
  renderOldest(stats.oldest_queued_job);
  view.throughput = stats.throughput;
  const completed = stats.throughput.reduce((sum, bucket) => sum + bucket.completed, 0);
  document.querySelector('[data-figure="completed-last-hour"]').textContent = String(completed);
  drawThroughput();
  renderTimes(stats.wait_seconds, stats.render_seconds);
  renderFailures(stats.failures);
  renderJobs(stats.jobs);
}

function renderPeak(stats) {
  const badge = byId("peak-badge");
  const windows = stats.peak_windows.length ? stats.peak_windows.join(", ") : "none";
  badge.dataset.peak = String(stats.peak);
  badge.className = stats.peak ? "badge badge-peak" : "badge badge-off";
  badge.textContent = stats.peak ? `Peak hours ×${stats.peak_multiplier}` : "Off-peak";
  badge.title = `Peak windows (${stats.timezone}): ${windows}`;
}

function renderQueue(depths) {
  const count = (priority, engine) =>
    depths.find((depth) => depth.priority === priority && depth.engine === engine).queued;
  const rows = PRIORITIES.map((priority) => {
    const counts = ENGINES.map((engine) => count(priority, engine));
    return el(
      "tr",
      {},
      el("td", {}, pill(priority)),
      ...ENGINES.map((engine, index) =>
        countCell(counts[index], { figure: "queued", priority, engine }),
      ),
      countCell(
        counts.reduce((a, b) => a + b, 0),
        { figure: "queued-priority", priority },
      ),
    );
  });
  const engineTotals = ENGINES.map((engine) =>
    PRIORITIES.reduce((sum, priority) => sum + count(priority, engine), 0),
  );
  const total = el(
    "tr",
    { class: "total" },
    el("td", {}, "All"),
    ...ENGINES.map((engine, index) =>
      countCell(engineTotals[index], { figure: "queued-engine", engine }),
    ),
    countCell(
      engineTotals.reduce((a, b) => a + b, 0),
      { figure: "queued-total" },
    ),
  );
  byId("queue-table").tBodies[0].replaceChildren(...rows, total);
}

function renderRenders(renders) {
  const rows = renders.map((engine) => {
    const share = engine.capacity > 0 ? Math.min(engine.rendering / engine.capacity, 1) : 0;
    const fill = el("div", { class: share >= 1 ? "meter-fill full" : "meter-fill" });
    fill.style.width = `${Math.round(share * 100)}%`;
    const meter = el("div", { class: engine.capacity > 0 ? "meter" : "meter meter-none" }, fill);
    const workers = plural(engine.workers, "worker");
    let detail = `${workers} × ${plural(engine.per_worker_limit, "slot")}`;
    if (engine.capacity === 0) detail += ": no render can start";
    if (engine.retrying > 0) detail += ` · ${engine.retrying} waiting to retry`;
    return el(
      "div",
      { class: "engine-row", dataset: { engine: engine.engine } },
      el(
        "div",
        { class: "engine-line" },
        el("span", { class: "engine-name" }, engine.engine),
        el(
          "span",
          { class: "engine-count" },
          el("span", { dataset: { figure: "rendering", engine: engine.engine } }, String(engine.rendering)),
          el("span", { class: "muted" }, " / "),
          el("span", { dataset: { figure: "capacity", engine: engine.engine } }, String(engine.capacity)),
        ),
      ),
      meter,
      el("div", { class: "engine-detail" }, detail),
    );
  });
  byId("renders").replaceChildren(...rows);
}

function renderOldest(job) {
  const box = byId("oldest-job");
  if (!job) {
    box.replaceChildren(el("p", { class: "muted" }, "No job is queued."));
    return;
  }
  box.replaceChildren(
    el("div", { class: "oldest-age", dataset: { figure: "oldest-age" } }, formatSeconds(job.age_seconds)),
    el("div", { class: "muted small" }, `waiting since ${formatMoment(job.enqueued_at)}`),
    el("div", { class: "oldest-meta" }, pill(job.priority), pill("engine", job.engine)),
    el("p", { class: "oldest-id", dataset: { figure: "oldest-id" } }, job.id),
  );
}

function renderTimes(wait, renderSeconds) {
  const row = (label, figures, name) =>
    el(
      "tr",
      {},
      el("td", {}, label),
      el("td", {}, String(figures.jobs)),
      el("td", { dataset: { figure: `${name}-p50` } }, formatSeconds(figures.p50_seconds)),
      el("td", { dataset: { figure: `${name}-p95` } }, formatSeconds(figures.p95_seconds)),
    );
  const rows = wait.map((figures) => {
    const label = el("span", {}, "Wait ", pill(figures.priority));
    const tr = row(label, figures, "wait");
    for (const cell of tr.cells) cell.dataset.priority = figures.priority;
    return tr;
  });
  rows.push(row("Render", renderSeconds, "render"));
  byId("times-table").tBodies[0].replaceChildren(...rows);
}

function renderFailures(failures) {
  const figures = { failed: failures.failed, "timed-out": failures.timed_out, retried: failures.retried };
  for (const [name, value] of Object.entries(figures)) {
    const node = document.querySelector(`[data-figure="${name}"]`);
    node.textContent = String(value);
    node.classList.toggle("alert", value > 0 && name !== "retried");
  }
}

// Jobs table

function renderJobs(page) {
  const first = page.offset + 1;
  const last = page.offset + page.items.length;
  byId("page-label").textContent = page.items.length ? `Jobs ${first}–${last}` : "No jobs";
  byId("page-prev").disabled = page.offset === 0;
  byId("page-next").disabled = !page.has_more;

  // Rebuilding only on change keeps a row and its buttons in place between polls.
  const key = JSON.stringify(page.items);
  if (key === view.jobsKey) return;
  view.jobsKey = key;
  byId("jobs-table").tBodies[0].replaceChildren(...page.items.map(jobRow));
  byId("jobs-empty").hidden = page.items.length > 0;
}

function jobRow(job) {
  const actions = el(
    "td",
    { class: "actions" },
    el(
      "a",
      {
        class: "button button-quiet button-small",
        href: job.temporal_ui_url,
        target: "_blank",
        rel: "noopener noreferrer",
        title: "Open the workflow in the Temporal Web UI",
        dataset: { action: "temporal" },
      },
      "Temporal ↗",
    ),
  );
  if (CANCELLABLE.has(job.status)) actions.append(actionButton(job, "cancel", "Cancel"));
  if (RETRYABLE.has(job.status)) actions.append(actionButton(job, "retry", "Retry"));

  return el(
    "tr",
    { dataset: { jobId: job.id } },
    el(
      "td",
      {},
      el("div", { class: "job-title", title: job.title }, job.title),
      el("div", { class: "job-id" }, job.id),
    ),
    el("td", {}, `${JOB_TYPE_LABELS[job.job_type] || job.job_type} `, pill(job.priority)),
    el("td", {}, job.engine),
    el("td", { dataset: { field: "status" } }, pill(job.status)),
    el("td", {}, `${job.attempt} / ${job.max_attempts}`),
    el("td", { title: job.enqueued_at }, formatMoment(job.enqueued_at)),
    el("td", { class: "job-error", title: job.error || "" }, job.error || ""),
    actions,
  );
}

function actionButton(job, action, label) {
  const className = action === "cancel" ? "button button-danger button-small" : "button button-small";
  const button = el("button", { type: "button", class: className, dataset: { action } }, label);
  button.addEventListener("click", () => runJobAction(job, action, label, button));
  return button;
}

async function runJobAction(job, action, label, button) {
  if (!window.confirm(`${label} job ${job.id} ("${job.title}")?`)) return;
  button.disabled = true;
  let result;
  try {
    result = await callApi("POST", `/v1/jobs/${encodeURIComponent(job.id)}/${action}`);
  } catch {
    button.disabled = false;
    showToast("The API cannot be reached.", true);
    return;
  }
  if (result.status === 202) {
    const done = action === "cancel" ? "Cancellation requested for" : "Queued again:";
    showToast(`${done} ${job.id}`);
  } else if (result.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken(`The token was rejected: ${detailOf(result.body, "unauthorized")}.`);
    return;
  } else {
    button.disabled = false;
    showToast(`${label} failed: ${detailOf(result.body, `HTTP ${result.status}`)}`, true);
  }
  view.jobsKey = "";
  refresh();
}

// Throughput chart

function niceStep(max) {
  for (const step of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]) {
    if (max / step <= 4) return step;
  }
  return Math.ceil(max / 4);
}

function drawThroughput() {
  const canvas = byId("throughput-chart");
  const buckets = view.throughput;
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  if (!buckets.length) return;

  const pad = { left: 34, right: 8, top: 8, bottom: 22 };
  const plotWidth = width - pad.left - pad.right;
  const plotHeight = height - pad.top - pad.bottom;
  const max = Math.max(...buckets.map((bucket) => bucket.completed));
  const step = niceStep(Math.max(max, 1));
  const top = Math.max(step * Math.ceil(max / step), step * 2);

  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  for (let value = 0; value <= top; value += step) {
    const y = pad.top + plotHeight - (value / top) * plotHeight;
    ctx.strokeStyle = value === 0 ? "#c9d1de" : "#edf0f4";
    ctx.beginPath();
    ctx.moveTo(pad.left, Math.round(y) + 0.5);
    ctx.lineTo(width - pad.right, Math.round(y) + 0.5);
    ctx.stroke();
    ctx.fillStyle = "#687385";
    ctx.textAlign = "right";
    ctx.fillText(String(value), pad.left - 6, y);
  }

  const slot = plotWidth / buckets.length;
  const gap = slot > 6 ? 2 : 1;
  buckets.forEach((bucket, index) => {
    if (bucket.completed === 0) return;
    const barHeight = (bucket.completed / top) * plotHeight;
    ctx.fillStyle = index === view.hover ? "#1d4fa8" : "#2f6fde";
    ctx.fillRect(
      pad.left + index * slot + gap / 2,
      pad.top + plotHeight - barHeight,
      Math.max(slot - gap, 1),
      barHeight,
    );
  });

  ctx.fillStyle = "#687385";
  ctx.textBaseline = "top";
  const labels = [
    [0, "-60 min", "left"],
    [15, "-45", "center"],
    [30, "-30", "center"],
    [45, "-15", "center"],
    [60, "now", "right"],
  ];
  for (const [minute, text, align] of labels) {
    ctx.textAlign = align;
    ctx.fillText(text, pad.left + minute * slot, height - pad.bottom + 6);
  }
  view.chart = { left: pad.left, slot };
}

function hoverChart(event) {
  const chart = view.chart;
  if (!chart || !view.throughput.length) return;
  const x = event.offsetX - chart.left;
  const index = Math.floor(x / chart.slot);
  const bucket = view.throughput[index];
  view.hover = bucket ? index : null;
  const caption = byId("chart-hover");
  if (bucket) {
    const end = new Date(new Date(bucket.start).getTime() + 60000).toISOString();
    caption.textContent = `${formatClock(bucket.start)}–${formatClock(end)}: ${bucket.completed} completed`;
  } else {
    caption.textContent = "\u00a0";
  }
  drawThroughput();
}

function leaveChart() {
  view.hover = null;
  byId("chart-hover").textContent = "\u00a0";
  drawThroughput();
}

// Start

function changePage(offset) {
  view.offset = Math.max(offset, 0);
  view.jobsKey = "";
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  byId("token-form").addEventListener("submit", acceptToken);
  byId("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken();
  });
  byId("status-filter").addEventListener("change", (event) => {
    view.status = event.target.value;
    changePage(0);
  });
  byId("page-prev").addEventListener("click", () => changePage(view.offset - PAGE_SIZE));
  byId("page-next").addEventListener("click", () => changePage(view.offset + PAGE_SIZE));
  const canvas = byId("throughput-chart");
  canvas.addEventListener("mousemove", hoverChart);
  canvas.addEventListener("mouseleave", leaveChart);
  window.addEventListener("resize", drawThroughput);
  refresh();
});
