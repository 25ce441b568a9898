// benchfleet station screen: renders the Workbench's StationView pushed by /stream.
// No framework, no CDN: plain DOM, text only (never HTML from data), like the hub dashboards.
// Keyboard: Tab/Shift-Tab move, Enter/Space press, Esc closes a dialog; Alt+N (accesskey n)
// is the main action of the moment, Alt+S signs in. Focus survives every re-render.
"use strict";

const $ = (id) => document.getElementById(id);
const work = $("work");
let view = null;
let lastWork = "";
let shownSignedIn = null;  // which of sign-in / work is on screen

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick") node.addEventListener("click", value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function toast(text, ok = false) {
  const box = $("toast");
  box.textContent = text;
  box.className = ok ? "toast ok" : "toast";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, ok ? 2500 : 6000);
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "X-Screen": "1", "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  let data = {};
  try { data = await response.json(); } catch (_) { /* empty body */ }
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : `refused (${response.status})`;
    throw new Error(detail);
  }
  return data;
}

async function act(path, body, button) {
  if (button) button.disabled = true;
  try { await post(path, body); } catch (err) { toast(err.message); if (button) button.disabled = false; }
}

const jobPath = (jobId, action) => `/api/jobs/${encodeURIComponent(jobId)}/${action}`;

function mmss(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function due(iso) {
  if (!iso) return "no deadline";
  const when = new Date(iso);
  const minutes = Math.round((when - Date.now()) / 60000);
  const clock = when.toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
  return minutes < 0 ? `overdue (${clock})` : minutes < 120 ? `due in ${minutes} min` : `due ${clock}`;
}

// ---- status bar and banners ------------------------------------------------------------------

function renderStatus(v) {
  const hub = $("hub");
  hub.textContent = v.hub_online ? "hub online" : "hub unreachable";
  hub.className = `pill ${v.hub_online ? "on" : "off"}`;
  $("devices").replaceChildren(...v.devices.map((d) => el("span",
    { class: `dev ${d.state}`, title: d.detail || d.state }, `${d.name}: ${d.state}`)));
  const alarms = $("alarms");
  alarms.textContent = v.alarms.length ? `${v.alarms.length} alarm${v.alarms.length > 1 ? "s" : ""}` : "no alarms";
  alarms.className = `alarm-count ${v.alarms.length ? "has" : ""}`;
  const who = $("who");
  if (v.signed_in && v.technician) {
    who.replaceChildren(el("span", {}, `${v.technician.name} (${v.technician.badge})`),
      el("button", { type: "button", id: "sign-out", onclick: signOut }, "Sign out"));
  } else {
    who.replaceChildren(el("span", {}, "not signed in"));
  }
  const banners = v.messages.map((m) => el("div", { class: `banner ${/hub/i.test(m) ? "warn" : "bad"}` }, m));
  for (const a of v.alarms) {
    banners.push(el("div", { class: "banner alarm" },
      `Alarm (${a.severity}) ${a.device || "station"}: ${a.kind} - ${a.message}`));
  }
  $("banners").replaceChildren(...banners);
}

// ---- sign-in ---------------------------------------------------------------------------------

function setupSignIn() {
  const pin = $("pin");
  for (const key of document.querySelectorAll(".keypad .key")) {
    key.addEventListener("click", () => {
      const k = key.dataset.key;
      pin.value = k === "clear" ? "" : k === "back" ? pin.value.slice(0, -1) : (pin.value + k).slice(0, 12);
    });
  }
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("signin-problem").textContent = "";
    try {
      await post("/api/sign-in", { badge: $("badge").value, pin: pin.value });
      pin.value = "";
      await refresh();
    } catch (err) {
      pin.value = "";
      $("signin-problem").textContent = err.message;
    }
  });
}

async function signOut() {
  try { await post("/api/sign-out"); } catch (err) { toast(err.message); }
  await refresh();
}

// ---- the work area ---------------------------------------------------------------------------

function renderQueue(v) {
  const items = v.queue.map((q) => el("li", { class: q.in_hand ? "current" : "", "data-job": q.job_id },
    el("div", {}, q.rush ? el("span", { class: "rush" }, "RUSH") : null, el("strong", {}, q.order_ref || q.job_id.slice(0, 8))),
    el("div", {}, `${q.sku} · ${q.serial}`),
    el("div", { class: "due" }, `${due(q.due_at)} · ${q.hub_status}`)));
  return el("section", { class: "panel", "aria-labelledby": "queue-title" },
    el("h2", { id: "queue-title" }, `Queue (${v.queue.length})`),
    items.length ? el("ol", { class: "queue" }, items) : el("p", { class: "muted" }, "Nothing waiting for this station."));
}

function evidenceOf(step) {
  return step.evidence.map((e) => {
    if (e.kind === "photo" && e.sha256) {
      return el("figure", {}, el("img", { src: `/proofs/${e.sha256}.png`, alt: `${step.name} photo` }),
        el("figcaption", { class: "muted" }, `photo ${e.sha256.slice(0, 10)}`));
    }
    if (e.value !== null && e.value !== undefined) return el("div", { class: "fact" }, `${e.kind}: ${e.value} ${e.unit || ""}`);
    if (e.code) return el("div", { class: "fact" }, `${e.kind}: ${e.code}`);
    if (e.by) return el("div", { class: "fact" }, `signed by ${e.by}`);
    return el("div", { class: "fact muted" }, `${e.kind} ${e.sha256 ? e.sha256.slice(0, 10) : ""}`);
  });
}

function progressOf(step) {
  const p = step.progress;
  if (!p) return null;
  const pct = Math.round(p.fraction * 100);
  const left = p.remaining_s !== null && p.remaining_s !== undefined ? ` · ${mmss(p.remaining_s)} left` : "";
  return el("div", { class: "progress-box" },
    el("div", { class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": pct },
      el("div", { style: `width:${pct}%` })),
    el("p", { class: "progress-text", id: "progress-text" }, `${pct} %${left} · ${p.detail}`));
}

function diffRows(v) {
  const expected = [], read = [];
  for (const d of v.diff) {
    const bad = d.op !== "equal";
    expected.push(el("span", { class: bad ? "bad" : "" }, d.expected || "·"));
    read.push(el("span", { class: bad ? "bad" : "" }, d.read || "·"));
  }
  return el("div", { class: "diff", "aria-label": "expected against read, differences highlighted" },
    el("span", { class: "muted" }, "expected"), el("span", { class: "chars", id: "diff-expected" }, expected),
    el("span", { class: "muted" }, "read"), el("span", { class: "chars", id: "diff-read" }, read));
}

function verificationsOf(job) {
  return job.verifications.map((v) => el("section", { class: "verification", "aria-label": `verification of ${v.step}` },
    el("h3", {}, `Verification of ${v.step}: `, el("span", { class: `verdict ${v.verdict}`, id: "verdict" }, v.verdict)),
    el("div", { class: "evidence" },
      el("img", { src: `/proofs/${v.proof_sha256}.png`, alt: `proof photo of ${v.step}` }),
      el("div", {}, v.verdict === "PASS" ? null : diffRows(v),
        v.reasons.length ? el("p", { class: "muted" }, v.reasons.join("; ")) : null))));
}

function mainActions(job, step) {
  if (job.must_do_step !== step.name || !job.active) return [];
  const path = (a) => jobPath(job.job_id, a);
  const body = { step: step.name };
  if (job.must_do === "ready") {
    return [el("button", { type: "button", class: "go", accesskey: "n", id: "act-ready",
      onclick: (e) => act(path("ready"), body, e.currentTarget) }, "Ready")];
  }
  if (job.must_do === "signoff") {
    return [el("button", { type: "button", class: "go", accesskey: "n", id: "act-signoff",
      onclick: (e) => act(path("sign-off"), body, e.currentTarget) }, "Sign off")];
  }
  if (job.must_do === "frame_and_confirm") {
    return [
      el("button", { type: "button", id: "act-frame", disabled: view.framing ? "disabled" : null,
        onclick: (e) => act(path("frame"), body, e.currentTarget) }, view.framing ? "Framing ..." : "Frame (low power)"),
      el("button", { type: "button", class: "danger", accesskey: "n", id: "act-fire",
        disabled: view.framing ? "disabled" : null, onclick: () => openFire(job, step) }, "Fire laser ..."),
    ];
  }
  return [];
}

function stepCard(job, step) {
  const engraving = step.kind === "engrave" && job.engraving_text !== null;
  return el("section", { class: "step-card", "data-step": step.name },
    el("h3", {}, `${step.name} (${step.kind}) - ${step.state.replaceAll("_", " ")}`),
    el("p", { class: "instructions", id: "instructions" }, step.instructions),
    step.detail ? el("p", { class: "muted" }, step.detail) : null,
    engraving ? el("div", { class: "preview" },
      el("img", { src: `/preview/${job.job_id}.png`, alt: "engraving preview: toolpath over the item", id: "preview" })) : null,
    progressOf(step),
    el("div", { class: "evidence" }, evidenceOf(step)),
    el("div", { class: "actions" }, mainActions(job, step)));
}

function focusStep(job) {
  const wanted = job.must_do_step;
  return job.steps.find((s) => s.name === wanted)
    || job.steps.find((s) => s.state === "running")
    || [...job.steps].reverse().find((s) => s.state === "done" || s.state === "failed")
    || job.steps[0];
}

function renderJob(v) {
  const job = v.job;
  if (!job) return el("section", { class: "panel" }, el("h2", {}, "No job in hand"),
    el("p", { class: "muted" }, v.operator === "auto" ? "This station runs jobs by itself." : "Waiting for the next job."));
  const tools = [];
  if (job.active && job.must_do === "acknowledge") {
    tools.push(el("button", { type: "button", class: "primary", accesskey: "n", id: "act-ack",
      onclick: (e) => act(jobPath(job.job_id, "acknowledge"), {}, e.currentTarget) }, "Acknowledge"));
    tools.push(el("button", { type: "button", id: "act-block", onclick: () => openReason("block", job) }, "Block"));
  }
  if (job.active && job.must_do !== "none" && job.must_do !== "acknowledge") {
    tools.push(el("button", { type: "button", id: "act-scrap", onclick: () => openReason("scrap", job) }, "Scrap"));
  }
  tools.push(el("button", { type: "button", class: "quiet", id: "act-problem", onclick: () => openReason("problem", job) }, "Report a problem"));
  tools.push(el("button", { type: "button", class: "quiet", id: "act-maintenance", onclick: () => openReason("maintenance", job) }, "Request maintenance"));
  const step = focusStep(job);
  return el("section", { class: "panel job", "data-job": job.job_id },
    el("div", { class: "job-head" },
      el("h2", {}, job.rush ? el("span", { class: "rush" }, "RUSH") : null, `${job.order_ref} · ${job.sku} · ${job.serial}`),
      el("span", { class: "muted" }, due(job.due_at))),
    job.engraving_text !== null ? el("p", {}, "Engrave ", el("span", { class: "engraving-text", id: "job-text" }, job.engraving_text),
      job.template ? ` on ${job.template}` : "") : null,
    job.outcome ? el("p", { class: "outcome", id: "outcome" }, `Outcome: ${job.outcome}`) : null,
    el("ol", { class: "steps", "aria-label": "steps" }, job.steps.map((s) =>
      el("li", { class: s.state, title: s.state }, s.name))),
    verificationsOf(job),
    step && (job.must_do !== "acknowledge" || !job.active) ? stepCard(job, step) : null,
    el("div", { class: "tools" }, tools));
}

function renderWork(v) {
  const key = JSON.stringify({ ...v, at: null, alarms: null, devices: null });
  if (key === lastWork) return;
  lastWork = key;
  const focused = document.activeElement && document.activeElement.id;
  work.replaceChildren(el("div", { class: "work" }, renderQueue(v), renderJob(v)));
  if (focused && $(focused) && !$(focused).disabled) $(focused).focus();
  else if (!work.contains(document.activeElement) && !document.querySelector("dialog[open]")) {
    const main = work.querySelector("[accesskey='n']");
    if (main) main.focus();
  }
}

// ---- dialogs ---------------------------------------------------------------------------------

let fireFor = null;

function openFire(job, step) {
  fireFor = { job: job.job_id, step: step.name };
  $("fire-text").textContent = job.engraving_text || "";
  $("fire-piece").textContent = `${job.sku} ${job.serial}`;
  $("fire-dialog").showModal();
  $("fire-cancel").focus();  // Enter right after opening cancels: firing takes a second, deliberate press
}

function setupFire() {
  $("fire-cancel").addEventListener("click", () => $("fire-dialog").close());
  $("fire-go").addEventListener("click", async () => {
    const target = fireFor;
    fireFor = null;  // one confirmation fires once
    $("fire-dialog").close();
    if (target) await act(jobPath(target.job, "confirm-fire"), { step: target.step }, null);
  });
}

const REASONS = {
  block: ["Block this job", "Why can it not be done here?"],
  scrap: ["Scrap this job", "What is wrong with the piece?"],
  problem: ["Report a problem", "What happened?"],
  maintenance: ["Request maintenance", "What does the device need?"],
};
let reasonFor = null;

function openReason(kind, job) {
  reasonFor = { kind, job: job ? job.job_id : null };
  $("reason-title").textContent = REASONS[kind][0];
  $("reason-text").placeholder = REASONS[kind][1];
  $("reason-text").value = "";
  $("reason-problem").textContent = "";
  const device = $("reason-device");
  device.hidden = $("reason-device-label").hidden = kind !== "maintenance";
  device.replaceChildren(...view.devices.map((d) => el("option", { value: d.name }, `${d.name} (${d.family})`)));
  $("reason-dialog").showModal();
  $("reason-text").focus();
}

function setupReason() {
  $("reason-cancel").addEventListener("click", () => $("reason-dialog").close());
  $("reason-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("reason-text").value.trim();
    if (!text) { $("reason-problem").textContent = "A reason is required."; return; }
    const { kind, job } = reasonFor;
    const [path, body] = kind === "maintenance" ? ["/api/maintenance", { device: $("reason-device").value, text }]
      : kind === "problem" ? ["/api/problem", { job_id: job, text }]
        : [jobPath(job, kind), { reason: text }];
    try {
      await post(path, body);
      $("reason-dialog").close();
      toast(`${REASONS[kind][0]}: sent`, true);
    } catch (err) { $("reason-problem").textContent = err.message; }
  });
}

// ---- the stream ------------------------------------------------------------------------------

function render(v) {
  view = v;
  renderStatus(v);
  const signedIn = Boolean(v.signed_in);
  const signin = $("signin");
  if (shownSignedIn !== signedIn) {
    shownSignedIn = signedIn;
    signin.hidden = signedIn;
    work.hidden = !signedIn;
    lastWork = "";
    if (!signedIn) {
      for (const d of document.querySelectorAll("dialog[open]")) d.close();
      $("badge").focus();
    }
  }
  if (signedIn) renderWork(v);
  document.body.dataset.state = signedIn ? (v.job ? v.job.must_do : "idle") : "signed-out";
}

async function refresh() {
  const response = await fetch("/api/view", { credentials: "same-origin" });
  if (response.ok) render(await response.json());
}

function connect() {
  const source = new EventSource("/stream");
  source.addEventListener("view", (event) => render(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  });
}

setupSignIn();
setupFire();
setupReason();
connect();
