// Stent console: live updates, the admin token, and the write actions.
// Plain JavaScript, no build step. The token lives in sessionStorage (this
// tab only) and goes out as Authorization: Bearer, never as a cookie.
(function () {
  "use strict";
  var body = document.body;
  var page = body.dataset.page;
  var tokenRequired = body.dataset.tokenRequired === "1";
  var TOKEN_KEY = "stent-admin-token";

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function api(method, path, payload) {
    var headers = { "Accept": "application/json" };
    if (token()) headers["Authorization"] = "Bearer " + token();
    var init = { method: method, headers: headers, credentials: "omit" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-Stent-Console"] = "1";
      init.body = JSON.stringify(payload || {});
    }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (text) {
        var doc = null;
        try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
        if (!r.ok) {
          var err = new Error(r.status + " " + r.statusText + ": " + ((doc && doc.error) || text));
          err.status = r.status;
          throw err;
        }
        return doc;
      });
    });
  }

  var flashEl = document.getElementById("flash");
  function flash(msg, bad) {
    flashEl.textContent = msg;
    flashEl.className = bad ? "flash bad" : "flash";
    flashEl.hidden = false;
  }

  // The token form: asked once per tab, kept in sessionStorage.
  var form = document.getElementById("token-form");
  function showTokenState() {
    if (!form) return;
    var has = token() !== "";
    document.getElementById("token-state").textContent = has ? "Admin token set" : "No admin token: payloads hidden, actions refused";
    document.getElementById("token-input").hidden = has;
    document.getElementById("token-save").hidden = has;
    document.getElementById("token-clear").hidden = !has;
    form.className = has ? "token ok" : "token";
  }
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var v = document.getElementById("token-input").value.trim();
      if (!v) return;
      sessionStorage.setItem(TOKEN_KEY, v);
      api("GET", "/api/stats").then(function () { location.reload(); }, function (err) {
        sessionStorage.removeItem(TOKEN_KEY);
        showTokenState();
        flash(err.message, true);
      });
    });
    document.getElementById("token-clear").addEventListener("click", function () {
      sessionStorage.removeItem(TOKEN_KEY);
      location.reload();
    });
    showTokenState();
  }

  function text(s) { var d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }
  function roundDur(ms) {
    if (ms < 1000) return Math.round(ms) + "ms";
    var s = ms / 1000;
    if (s < 60) return (Math.round(s * 10) / 10) + "s";
    var m = Math.floor(s / 60), rs = Math.round(s % 60);
    if (m < 60) return m + "m" + rs + "s";
    return Math.floor(m / 60) + "h" + (m % 60) + "m0s";
  }
  function took(e, now) {
    var start = Date.parse(e.created_at);
    var end = e.ended_at ? Date.parse(e.ended_at) : (["completed", "failed", "canceled", "timed_out"].indexOf(e.status) >= 0 ? Date.parse(e.updated_at) : now);
    return roundDur(Math.max(0, end - start));
  }
  function firstLine(err) { return err ? String(err.message).split("\n")[0] : ""; }

  var liveEl = document.getElementById("live");
  function live(ok) { if (liveEl) liveEl.textContent = ok ? "live · updated " + new Date().toLocaleTimeString() : "live · the API did not answer"; }

  // Executions: poll the API with the page's filters and patch the rows.
  function pollList() {
    var params = new URLSearchParams(location.search);
    if (params.get("cursor")) return; // a later page stays as it is
    var tbody = document.getElementById("rows");
    var last = "";
    function tick() {
      api("GET", "/api/executions?" + params.toString()).then(function (doc) {
        live(true);
        var key = JSON.stringify(doc.executions.map(function (e) { return [e.id, e.status, e.attempts, e.updated_at]; }));
        if (key === last) return;
        var before = {};
        Array.prototype.forEach.call(tbody.querySelectorAll("tr[data-id]"), function (tr) { before[tr.dataset.id] = tr.dataset.status || tr.querySelector(".badge").textContent; });
        last = key;
        var now = Date.now();
        if (doc.executions.length === 0) {
          tbody.innerHTML = '<tr class="empty"><td colspan="8">No executions match.</td></tr>';
          return;
        }
        tbody.innerHTML = doc.executions.map(function (e) {
          var fresh = before[e.id] !== e.status ? ' class="fresh"' : "";
          return '<tr data-id="' + text(e.id) + '" data-status="' + text(e.status) + '"' + fresh + '>' +
            '<td class="id"><a href="/executions/' + encodeURIComponent(e.id) + '">' + text(e.id) + '</a></td>' +
            '<td>' + text(e.function) + '</td><td>' + text(e.queue) + '</td>' +
            '<td><span class="badge st-' + text(e.status) + '">' + text(e.status) + '</span></td>' +
            '<td class="num">' + e.attempts + '</td>' +
            '<td title="' + text(e.created_at) + '">' + roundDur(now - Date.parse(e.created_at)) + ' ago</td>' +
            '<td class="num">' + took(e, now) + '</td>' +
            '<td class="err">' + text(firstLine(e.error)) + '</td></tr>';
        }).join("");
      }, function () { live(false); });
    }
    var counts = document.getElementById("counts");
    var statuses = ["pending", "running", "waiting", "completed", "failed", "canceled", "timed_out"];
    function countTick() {
      if (!counts) return;
      api("GET", "/api/stats").then(function (st) {
        counts.innerHTML = '<span class="total">' + st.total + ' in all</span>' + statuses.filter(function (s) { return st.by_status[s]; }).map(function (s) {
          return ' <a class="count" href="/?status=' + s + '"><span class="badge st-' + s + '">' + s + '</span> ' + st.by_status[s] + '</a>';
        }).join("");
      }, function () {});
    }
    tick();
    setInterval(function () { tick(); countTick(); }, 2000);
  }

  // Execution: fill the payloads (the page is rendered without the
  // token), and patch the page in place from the API as the execution
  // moves on: status, facts, actions, error, output, timeline, children
  // and journal.
  var TERMINAL = ["completed", "failed", "canceled", "timed_out"];
  function stamp(t) {
    if (!t) return "-";
    var iso = new Date(t).toISOString(); // 2026-12-01T01:46:54.684Z
    return iso.slice(0, 10) + " " + iso.slice(11, 23) + " UTC";
  }
  function span(a, b) { return roundDur(Math.max(0, Date.parse(b) - Date.parse(a))); }
  function pretty(v) { return v === undefined ? "null" : JSON.stringify(v, null, 2); }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function treeHTML(nodes) {
    return '<ul class="tree">' + nodes.map(function (n) {
      return '<li><a class="id" href="/executions/' + encodeURIComponent(n.id) + '">' + text(n.id) + '</a> <span class="fn">' + text(n.function) +
        '</span> <span class="badge st-' + text(n.status) + '">' + text(n.status) + '</span> <span class="dim">' + roundDur(n.duration_ms) +
        ' · ' + plural(n.attempts, "attempt") + '</span>' + (n.children && n.children.length ? treeHTML(n.children) : "") + '</li>';
    }).join("") + '</ul>';
  }

  function entryState(e, now) {
    if (e.error) return "failed";
    if (e.done || (e.kind === "sleep" && e.fire_at && Date.parse(e.fire_at) <= now)) return "completed";
    return "waiting";
  }
  function journalHTML(entries) {
    if (!entries.length) return '<p class="dim">Empty: no durable operation yet.</p>';
    var now = Date.now();
    return '<table class="grid"><thead><tr><th class="num">#</th><th>Kind</th><th>Name</th><th>State</th><th>Started</th><th class="num">Took</th><th>Detail</th></tr></thead><tbody>' +
      entries.map(function (e) {
        var st = entryState(e, now);
        var detail = e.child_id ? '<a class="id" href="/executions/' + encodeURIComponent(e.child_id) + '">' + text(e.child_id) + '</a> ' : "";
        if (e.error) detail += '<span class="err">' + text(firstLine(e.error)) + '</span>';
        else if (e.kind === "sleep" && e.fire_at) detail += "until " + stamp(e.fire_at);
        else if (e.output !== undefined) detail += '<code data-entry="' + e.position + '">' + text(JSON.stringify(e.output)) + '</code>';
        return '<tr><td class="num">' + e.position + '</td><td>' + text(e.kind) + '</td><td>' + text(e.name) + '</td>' +
          '<td><span class="badge st-' + st + '">' + (st === "completed" ? "done" : st) + '</span></td><td>' + stamp(e.started_at) + '</td>' +
          '<td class="num">' + (e.started_at && e.ended_at ? span(e.started_at, e.ended_at) : "-") + '</td><td>' + detail + '</td></tr>';
      }).join("") + '</tbody></table>';
  }

  function timelineHTML(doc, tl) {
    var lanes = '<div class="lane"><span class="label">' + text(doc.function) + ' <span class="dim">' + plural(doc.attempts, "attempt") +
      '</span></span><div class="track"><div class="bar st-' + text(doc.status) + '" style="left:0%;width:100%" title="' +
      stamp(tl.start) + ' → ' + stamp(tl.end) + '"></div></div></div>';
    lanes += tl.items.map(function (it) {
      var title = it.kind + " " + (it.name || "") + ": " + stamp(it.start) + " → " + stamp(it.end) + " (" + span(it.start, it.end) + ")" +
        (it.planned ? ", due " + stamp(it.planned) : "");
      return '<div class="lane" data-kind="' + text(it.kind) + '"><span class="label">#' + it.position + ' ' + text(it.kind) + ' ' + text(it.name || "") +
        (it.attempts > 1 ? ' <span class="dim">' + it.attempts + ' attempts</span>' : "") + '</span><div class="track"><div class="bar k-' + text(it.kind) +
        ' s-' + text(it.state) + '" style="left:' + it.left + '%;width:' + it.width + '%" title="' + text(title) + '"></div></div></div>';
    }).join("");
    return lanes + '<div class="axis"><span>' + stamp(tl.start) + '</span><span>' + stamp(tl.end) + '</span></div>';
  }

  function actionsHTML(doc) {
    var h = "";
    var id = text(doc.id);
    if (TERMINAL.indexOf(doc.status) < 0) {
      h += '<button type="button" class="danger" data-action="cancel" data-id="' + id + '">Cancel</button>' +
        '<form class="signal" data-action="signal" data-id="' + id + '">' +
        '<input name="name" placeholder="signal name" aria-label="signal name" required size="12"> ' +
        '<input name="payload" placeholder=\'payload JSON, e.g. {"ok":true}\' aria-label="signal payload" size="22"> ' +
        '<button type="submit">Send signal</button></form>';
    }
    (doc.dead_letters || []).forEach(function (dl) {
      h += '<button type="button" data-action="replay" data-id="' + text(dl.id) + '">Replay dead letter</button>';
    });
    return h;
  }

  function errorHTML(err) {
    return '<h2>Error' + (err.kind ? ' <span class="dim">(' + text(err.kind) + (err.non_retryable ? ", not retryable" : "") + ')</span>' : "") + '</h2>' +
      '<pre data-field="error">' + text(err.message) + '</pre>' +
      (err.stack ? '<details open><summary>Stack trace</summary><pre data-field="stack">' + text(err.stack) + '</pre></details>' : "");
  }

  function pollDetail() {
    var d = document.getElementById("detail");
    var id = d.dataset.id;
    var el = function (sel) { return document.querySelector(sel); };
    var set = function (field, v) { var e = el('[data-field="' + field + '"]'); if (e && v !== undefined) e.textContent = v; };
    function fill(doc) {
      set("input", pretty(doc.input));
      set("output", pretty(doc.output));
      var box = document.getElementById("error-box");
      box.hidden = !doc.error;
      if (doc.error) box.innerHTML = errorHTML(doc.error);
      doc.journal.forEach(function (e) {
        var c = el('[data-entry="' + e.position + '"]');
        if (c && e.output !== undefined) c.textContent = JSON.stringify(e.output);
      });
      var keys = doc.state ? Object.keys(doc.state).sort() : [];
      document.getElementById("state").hidden = keys.length === 0;
      set("state", keys.map(function (k) { return k + " = " + JSON.stringify(doc.state[k], null, 2); }).join("\n"));
    }
    var fact = function (name, v) {
      Array.prototype.forEach.call(document.querySelectorAll('[data-fact="' + name + '"]'), function (e) { e.hidden = !v; });
      set(name, v || "");
    };
    var lastActions = null;
    function patch(doc) {
      d.dataset.status = doc.status;
      d.dataset.journal = doc.journal.length;
      d.dataset.updated = Date.parse(doc.updated_at);
      var badge = el('[data-field="status"]');
      badge.textContent = doc.status;
      badge.className = "badge big st-" + doc.status;
      el('[data-field="cancel_requested"]').hidden = !doc.cancel_requested;
      set("attempts", doc.attempts);
      set("ended", doc.ended_at ? stamp(doc.ended_at) + " (after " + span(doc.created_at, doc.ended_at) + ")" : "-");
      fact("waiting_on", doc.waiting_on);
      fact("owner", doc.owner);
      var actions = actionsHTML(doc);
      if (actions !== lastActions) { // a form being typed in stays as long as it applies
        document.getElementById("actions").innerHTML = actions;
        lastActions = actions;
      }
      fill(doc);
      document.getElementById("tree").innerHTML = doc.children && doc.children.length ? treeHTML(doc.children) : '<p class="dim">No children.</p>';
      document.getElementById("journal").innerHTML = journalHTML(doc.journal);
    }
    // Answers can arrive out of order (a tick, an action's refresh): an
    // answer older than the one last applied is dropped.
    var asked = { doc: 0, tl: 0 }, applied = { doc: 0, tl: 0 };
    function fresh(kind, n) {
      if (n < applied[kind]) return false;
      applied[kind] = n;
      return true;
    }
    function drawTimeline(doc) {
      var n = ++asked.tl;
      return api("GET", "/api/executions/" + encodeURIComponent(id) + "/timeline").then(function (tl) {
        if (!fresh("tl", n)) return;
        document.getElementById("timeline").innerHTML = timelineHTML(doc, tl);
        document.getElementById("timeline-span").textContent = span(tl.start, tl.end) + (tl.running ? " so far" : "");
      });
    }
    function tick(first) {
      var n = ++asked.doc;
      return api("GET", "/api/executions/" + encodeURIComponent(id)).then(function (doc) {
        if (!fresh("doc", n)) return;
        live(true);
        var moved = doc.status !== d.dataset.status || doc.journal.length !== Number(d.dataset.journal) ||
            Date.parse(doc.updated_at) !== Number(d.dataset.updated);
        if (first) lastActions = actionsHTML(doc);
        if (moved) patch(doc);
        else if (first && token()) fill(doc);
        // A running execution's axis ends now: redraw it every tick.
        if (moved || TERMINAL.indexOf(doc.status) < 0) return drawTimeline(doc);
      }).catch(function (err) { live(false); if (err.status === 401) flash(err.message, true); });
    }
    tick(true);
    setInterval(function () { tick(false); }, 2000);
    return tick;
  }

  // The write actions: buttons and forms with data-action.
  function act(el, extra) {
    var id = el.dataset.id;
    var req;
    switch (el.dataset.action) {
      case "cancel": req = ["/api/executions/" + encodeURIComponent(id) + "/cancel", {}, "Cancel requested"]; break;
      case "signal": req = ["/api/executions/" + encodeURIComponent(id) + "/signal", extra, "Signal sent"]; break;
      case "replay": req = ["/api/dead-letters/" + encodeURIComponent(id) + "/replay", {}, "Replayed"]; break;
      case "discard": req = ["/api/dead-letters/" + encodeURIComponent(id) + "/discard", {}, "Discarded"]; break;
      case "replay-all": req = ["/api/dead-letters/replay-all", {}, "Replayed all"]; break;
      default: return;
    }
    el.disabled = true;
    api("POST", req[0], req[1]).then(function (doc) {
      var n = Array.isArray(doc) ? " (" + doc.length + ")" : "";
      flash(req[2] + n + ".", false);
      if (refreshDetail) { // the execution page patches itself
        el.disabled = false;
        if (el.reset) el.reset();
        refreshDetail(false);
        return;
      }
      setTimeout(function () { location.reload(); }, 600);
    }, function (err) {
      el.disabled = false;
      flash(err.message, true);
    });
  }
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("button[data-action]");
    if (el) act(el);
  });
  document.addEventListener("submit", function (ev) {
    var f = ev.target.closest("form[data-action]");
    if (!f) return;
    ev.preventDefault();
    var raw = f.elements.payload.value.trim();
    var payload = null;
    if (raw) {
      try { payload = JSON.parse(raw); } catch (e) { flash("The payload is not JSON: " + e.message, true); return; }
    }
    act(f, { name: f.elements.name.value.trim(), payload: payload });
  });

  // Dead letters: the page is rendered without the token; with it, show
  // the errors.
  function fillDeadLetters() {
    if (!token()) return;
    api("GET", "/api/dead-letters").then(function (ds) {
      ds.forEach(function (d) {
        var td = document.querySelector('#dead-letters tr[data-id="' + d.id + '"] td.err');
        if (td) td.textContent = firstLine(d.error);
      });
    }, function (err) { flash(err.message, true); });
  }

  if (page === "executions") pollList();
  if (page === "dead-letters") fillDeadLetters();
  var refreshDetail = page === "execution" ? pollDetail() : null;
})();
