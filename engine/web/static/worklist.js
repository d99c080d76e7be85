/* yawlflow worklist: the HTTP API for a person (docs/serve.md, "The worklist page").
 *
 * No build step and no framework. The API key lives in this tab's sessionStorage and every
 * request sends it as `Authorization: Bearer`; the event streams are read with fetch(), since
 * EventSource cannot send that header (and a key in a URL would end up in logs). A stream event
 * only says that something changed: the page then re-reads what it shows. Nothing the server
 * sends is inserted as HTML, only as text.
 */
"use strict";

(function () {
  const ROOT = document.querySelector('meta[name="yawlflow-root"]').content;
  const API = ROOT + "/api/v1";
  const STORE = "yawlflow.key";
  const ROLES = ["viewer", "operator", "admin"];
  const SHOWN = ["offered", "started"];
  const $ = (id) => document.getElementById(id);

  let me = null; // the key's {name, role, tenant}
  let streams = null; // aborts this view's streams on log out
  let refresh = null; // re-reads the current view (coalesced)
  let pictureUrl = null;
  const CAPTION = $("picture-caption").textContent.replace(/\s+/g, " ").trim();
  let ids = 0;

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  // -- small helpers ---------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    node.append(...children); // strings become text nodes
    return node;
  }

  const uid = (prefix) => prefix + "-" + ++ids;
  const enc = encodeURIComponent;
  const caseHref = (id) => ROOT + "/cases/" + enc(id);
  const may = (role) => me !== null && ROLES.indexOf(me.role) >= ROLES.indexOf(role);
  const wait = (ms, signal) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });

  function say(text) {
    $("status").textContent = text;
  }

  function showError(input, error, text) {
    error.textContent = text;
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  function clearError(input, error) {
    error.textContent = "";
    error.hidden = true;
    input.removeAttribute("aria-invalid");
  }

  function fail(err) {
    if (err instanceof ApiError && err.status === 401) {
      logout("The server no longer accepts your key: log in again.");
    } else {
      say(err instanceof ApiError ? err.message : "Something went wrong: " + err);
    }
  }

  // Runs `work` now, or once more after the run in progress: the promise it returns settles
  // after a run that started after the call.
  function coalesce(work) {
    let running = null;
    let again = false;
    return function () {
      if (running !== null) {
        again = true;
        return running;
      }
      running = (async () => {
        try {
          do {
            again = false;
            await work();
          } while (again);
        } finally {
          running = null;
        }
      })();
      return running;
    };
  }

  // The text as a JSON object, or why it is not one (nothing is sent then). Empty means {}.
  function parseObject(text) {
    const trimmed = text.trim();
    if (trimmed === "") return { ok: true, value: {} };
    let value;
    try {
      value = JSON.parse(trimmed);
    } catch (err) {
      return { ok: false, error: "This is not valid JSON (" + err.message + "). Nothing was sent." };
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      const kind = value === null ? "null" : Array.isArray(value) ? "an array" : "a " + typeof value;
      return { ok: false, error: "This must be a JSON object, like {\"approved\": true}, not " + kind +
        ". Nothing was sent." };
    }
    return { ok: true, value: value };
  }

  // The box's text as a JSON object; when it is not one, the box shows why (and so does the
  // live region) and nothing is to be sent.
  function checkedObject(area, error) {
    const parsed = parseObject(area.value);
    if (parsed.ok) {
      clearError(area, error);
    } else {
      showError(area, error, parsed.error);
      say(parsed.error);
    }
    return parsed;
  }

  // -- the API ---------------------------------------------------------------------------------

  async function detail(response) {
    try {
      const problem = await response.json();
      return problem.detail || problem.title || "HTTP " + response.status;
    } catch (err) {
      return "HTTP " + response.status;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: "Bearer " + sessionStorage.getItem(STORE) };
    const init = { method: method, headers: headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(API + path, init);
    if (!response.ok) throw new ApiError(response.status, await detail(response));
    return response;
  }

  const getJSON = async (path) => (await api("GET", path)).json();

  async function everyPage(path, field) {
    const out = [];
    let cursor = null;
    for (let n = 0; n < 20; n++) {
      const page = await getJSON(path + "?limit=500" + (cursor ? "&cursor=" + enc(cursor) : ""));
      out.push(...page[field]);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    return out;
  }

  function parseEvent(block) {
    const event = { event: "message", data: "", id: null, comment: null };
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) {
        event.comment = line.slice(1).trim();
        continue;
      }
      const at = line.indexOf(":");
      const field = at < 0 ? line : line.slice(0, at);
      let value = at < 0 ? "" : line.slice(at + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event.event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") event.id = value;
    }
    event.data = data.join("\n");
    return event;
  }

  // Reads one Server-Sent Events response to its end, calling onEvent for each event.
  async function readStream(path, onEvent, signal, lastId) {
    const headers = { Authorization: "Bearer " + sessionStorage.getItem(STORE), Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const response = await fetch(API + path, { headers: headers, signal: signal, cache: "no-store" });
    if (!response.ok) throw new ApiError(response.status, await detail(response));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        onEvent(parseEvent(block));
      }
    }
  }

  // Follows a stream until `signal` aborts or `on.finished()` says its end was the real end;
  // reconnects after a drop (1 s, doubling to 30 s), resuming after the last event id.
  async function follow(path, on, signal) {
    let delay = 1000;
    let lastId = null;
    while (!signal.aborted) {
      try {
        await readStream(path, (event) => {
          delay = 1000;
          if (event.id !== null) lastId = event.id;
          on.event(event);
        }, signal, lastId);
        if (on.finished()) return;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && err.status !== 429 && err.status !== 503) {
          fail(err);
          return;
        }
      }
      on.dropped();
      await wait(delay, signal);
      delay = Math.min(delay * 2, 30000);
    }
  }

  // -- work items (the worklist and the case page) ---------------------------------------------

  const itemPath = (item, action) => "/cases/" + enc(item.case) + "/items/" + item.id + "/" + action;
  const cardOf = (list, item) =>
    Array.from(list.children).find((li) => li.dataset.key === item.case + "/" + item.id) || null;

  function itemCard(item, list, showCase) {
    const li = el("li", { class: "card" });
    li.dataset.key = item.case + "/" + item.id;
    li.dataset.state = item.state;
    const metaId = uid("item");
    li.append(el("h3", {}, item.task));
    const meta = el("p", { id: metaId, class: "meta" },
      el("span", { class: "state state-" + item.state }, item.state), " · item " + item.id);
    if (showCase) meta.append(" · case ", el("a", { href: caseHref(item.case) }, item.case));
    li.append(meta);
    if (!may("operator")) return li;
    if (item.state === "offered") {
      const button = el("button", { type: "button", "aria-describedby": metaId }, "Start " + item.task);
      button.addEventListener("click", () => startItem(item, list, button));
      li.append(button);
    } else if (item.state === "started") {
      li.append(completeForm(item, list, metaId));
    }
    return li;
  }

  function completeForm(item, list, metaId) {
    const form = el("form", { class: "complete", novalidate: "" });
    const areaId = uid("output");
    const errorId = areaId + "-error";
    const area = el("textarea", { id: areaId, rows: "3", spellcheck: "false", "aria-describedby": errorId });
    area.value = "{}";
    const error = el("p", { id: errorId, class: "error", hidden: "" });
    const button = el("button", { type: "submit", "aria-describedby": metaId }, "Complete " + item.task);
    form.append(el("label", { for: areaId }, "Output of " + item.task + " (a JSON object)"), area, error, button);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      completeItem(item, list, area, error, button);
    });
    return form;
  }

  // Shows `items` in `list`, keeping the cards that did not change (and what is typed in them).
  function renderItems(list, empty, items, showCase) {
    empty.hidden = items.length > 0;
    const old = new Map(Array.from(list.children).map((li) => [li.dataset.key, li]));
    const wanted = items.map((item) => {
      const card = old.get(item.case + "/" + item.id);
      if (card && card.dataset.state === item.state) {
        old.delete(card.dataset.key);
        return card;
      }
      return itemCard(item, list, showCase);
    });
    for (const card of old.values()) card.remove();
    wanted.forEach((card, i) => {
      if (list.children[i] !== card) list.insertBefore(card, list.children[i] || null);
    });
  }

  async function startItem(item, list, button) {
    button.disabled = true;
    try {
      await api("POST", itemPath(item, "start"));
      say("Started " + item.task + " (item " + item.id + " of case " + item.case + "): fill in its output.");
    } catch (err) {
      button.disabled = false;
      fail(err);
    }
    try {
      await refresh();
    } catch (err) {
      fail(err);
    }
    const card = cardOf(list, item);
    const area = card && card.querySelector("textarea");
    if (area) area.focus();
  }

  async function completeItem(item, list, area, error, button) {
    const parsed = checkedObject(area, error);
    if (!parsed.ok) return;
    button.disabled = true;
    try {
      const done = await (await api("POST", itemPath(item, "complete"), parsed.value)).json();
      say("Completed " + item.task + ". Case " + done.case.id + " is " + done.case.status + ".");
    } catch (err) {
      button.disabled = false;
      if (err instanceof ApiError && err.status === 400) showError(area, error, err.message);
      fail(err);
      return;
    }
    try {
      await refresh();
    } catch (err) {
      fail(err);
    }
    const heading = list.closest("section").querySelector("h2");
    if (heading && !cardOf(list, item)) heading.focus();
  }

  // -- the worklist ------------------------------------------------------------------------------

  function setLive(on) {
    $("live").textContent = on ? "Live: new work appears here as it is offered." : "Reconnecting to live updates…";
  }

  function renderCases(cases) {
    const list = $("cases");
    $("cases-empty").hidden = cases.length > 0;
    list.replaceChildren(...cases.slice().reverse().map((c) => {
      const li = el("li", {}, el("a", { href: caseHref(c.id) }, c.id), " · " + c.spec + " · ",
        el("span", { class: "state state-" + c.status }, c.status));
      li.dataset.case = c.id;
      return li;
    }));
  }

  async function refreshWorklist() {
    const [items, cases] = await Promise.all([everyPage("/items", "items"), everyPage("/cases", "cases")]);
    renderItems($("items"), $("items-empty"), items.filter((i) => SHOWN.includes(i.state)), true);
    renderCases(cases);
  }

  async function loadSpecs() {
    const specs = (await getJSON("/specs")).specs;
    const select = $("spec");
    select.replaceChildren(...specs.map((s) => el("option", { value: s.id }, s.id + " (version " + s.version + ")")));
    if (specs.length === 0) select.append(el("option", { value: "", disabled: "" }, "no specs: an admin uploads one"));
  }

  async function startCase(e) {
    e.preventDefault();
    const parsed = checkedObject($("case-data"), $("case-data-error"));
    if (!parsed.ok) return;
    const spec = $("spec").value;
    if (!spec) {
      say("There is no spec to start.");
      return;
    }
    const button = $("start-form").querySelector("button");
    button.disabled = true;
    try {
      const started = await (await api("POST", "/cases", { spec: spec, data: parsed.value })).json();
      say("Started case " + started.id + " of " + spec + ".");
      await refresh();
    } catch (err) {
      fail(err);
    } finally {
      button.disabled = false;
    }
  }

  async function showWorklist() {
    $("worklist").hidden = false;
    document.title = "Worklist · yawlflow";
    $("viewer-note").hidden = may("operator");
    $("start-case").hidden = !may("operator");
    setLive(false);
    refresh = coalesce(refreshWorklist);
    if (may("operator")) loadSpecs().catch(fail);
    follow("/items/events", {
      event(event) {
        if (event.comment === "subscribed") {
          // subscribed first, then read: no change falls between the two
          refresh().then(() => setLive(true), fail);
        } else if (event.event.startsWith("item.")) {
          refresh().catch(fail);
        }
      },
      finished: () => false,
      dropped: () => setLive(false),
    }, streams.signal);
  }

  // -- a case ------------------------------------------------------------------------------------

  async function drawPicture(spec, caseId) {
    const img = $("picture");
    const caption = $("picture-caption");
    try {
      const response = await api("GET", "/specs/" + enc(spec) + "/picture?case=" + enc(caseId));
      const url = URL.createObjectURL(await response.blob());
      img.alt = "The net of spec " + spec + " with case " + caseId + " drawn over it.";
      img.src = url;
      img.hidden = false;
      if (pictureUrl !== null) URL.revokeObjectURL(pictureUrl);
      pictureUrl = url;
      caption.textContent = CAPTION;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) throw err;
      img.hidden = true;
      caption.textContent = "No picture: " + err.message;
    }
  }

  function renderMarking(marking) {
    const rows = [];
    for (const [place, n] of Object.entries(marking.tokens)) {
      rows.push("Condition " + place + ": " + n + " token" + (n === 1 ? "" : "s"));
    }
    for (const [task, counts] of Object.entries(marking.live)) {
      for (const [state, n] of Object.entries(counts)) rows.push("Task " + task + ": " + n + " " + state);
    }
    for (const [task, n] of Object.entries(marking.done)) {
      rows.push("Task " + task + ": completed " + n + " time" + (n === 1 ? "" : "s"));
    }
    if (Object.keys(marking.tokens).length === 0) rows.unshift("No tokens: the case is " + marking.status + ".");
    $("marking").replaceChildren(...rows.map((row) => el("li", {}, row)));
  }

  function renderHistory(trace) {
    $("history").replaceChildren(...trace.map((r) => {
      let text = r.event;
      if (r.task !== null) text += " " + r.task + (r.instance !== null ? "[" + r.instance + "]" : "");
      if (r.item !== null) text += " (item " + r.item + ")";
      const li = el("li", {}, text);
      if (r.data && Object.keys(r.data).length > 0) li.append(" ", el("code", {}, JSON.stringify(r.data)));
      return li;
    }));
  }

  async function refreshCase(caseId) {
    const path = "/cases/" + enc(caseId);
    const [shown, marking] = await Promise.all([getJSON(path), getJSON(path + "/marking")]);
    $("case-status").textContent = shown.status;
    $("case-spec").textContent = shown.spec;
    renderItems($("case-items"), $("case-items-empty"), shown.work_items.filter((i) => SHOWN.includes(i.state)),
      false);
    renderMarking(marking);
    renderHistory(shown.trace);
    $("case-data-view").textContent = JSON.stringify(shown.data, null, 2);
    await drawPicture(shown.spec, caseId);
  }

  async function showCase(caseId) {
    $("case-view").hidden = false;
    $("case-title").textContent = "Case " + caseId;
    document.title = "Case " + caseId + " · yawlflow";
    refresh = coalesce(() => refreshCase(caseId));
    try {
      await refresh();
    } catch (err) {
      fail(err);
      return;
    }
    let overflowed = false;
    follow("/cases/" + enc(caseId) + "/events", {
      event(event) {
        if (event.event === "overflow") overflowed = true;
        else refresh().catch(fail);
      },
      finished() {
        // the stream ends by itself once the case has ended, or when it read too slowly
        const ended = !overflowed;
        overflowed = false;
        if (ended) refresh().catch(fail);
        return ended;
      },
      dropped: () => {},
    }, streams.signal);
  }

  // -- logging in and out --------------------------------------------------------------------

  function enter() {
    $("login").hidden = true;
    $("session").hidden = false;
    $("who").textContent = me.name + " · " + me.role + " · tenant " + me.tenant;
    streams = new AbortController();
    const path = location.pathname.slice(ROOT.length);
    const match = /^\/cases\/([^/]+)$/.exec(path);
    if (match) showCase(decodeURIComponent(match[1]));
    else showWorklist();
  }

  function showLogin() {
    $("login").hidden = false;
    $("session").hidden = true;
  }

  function logout(message) {
    sessionStorage.removeItem(STORE);
    me = null;
    if (streams !== null) streams.abort();
    streams = null;
    for (const id of ["worklist", "case-view"]) $(id).hidden = true;
    for (const id of ["items", "cases", "case-items", "marking", "history"]) $(id).replaceChildren();
    $("case-data-view").textContent = "";
    $("picture").hidden = true;
    $("picture").removeAttribute("src");
    showLogin();
    say(message);
    $("key").focus();
  }

  async function login(e) {
    e.preventDefault();
    const input = $("key");
    const error = $("key-error");
    const value = input.value.trim();
    if (value === "") {
      showError(input, error, "Enter your API key.");
      return;
    }
    sessionStorage.setItem(STORE, value);
    try {
      me = await getJSON("/me");
    } catch (err) {
      sessionStorage.removeItem(STORE);
      const known = err instanceof ApiError && err.status === 401;
      showError(input, error, known ? "This server does not know that key." : "Could not log in: " + err.message);
      return;
    }
    clearError(input, error);
    input.value = "";
    say("Logged in as " + me.name + " (" + me.role + ", tenant " + me.tenant + ").");
    enter();
    $("main").focus();
  }

  async function boot() {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", () => logout("You are logged out."));
    $("start-form").addEventListener("submit", startCase);
    if (sessionStorage.getItem(STORE) !== null) {
      try {
        me = await getJSON("/me");
        enter();
        return;
      } catch (err) {
        sessionStorage.removeItem(STORE);
      }
    }
    showLogin();
  }

  boot();
})();
