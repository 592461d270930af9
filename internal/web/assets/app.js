// Palisade web admin: the little JavaScript it needs. Everything works
// without it except adding table rows, file uploads (which need the CSRF
// header) and the live status pages.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var keySeq = 0;

  // Grouped tables (the dial plan): a rule is a first row with the match
  // fields and more rows with one destination each; every row carries the
  // key of its group's first row.
  function freshKey() { return "n" + Date.now() + "-" + (keySeq++); }
  function groupRow(table, kind, key, group) {
    var tpl = table.querySelector('template[data-row="' + kind + '"]');
    return tpl.innerHTML.split("__KEY__").join(key).split("__GROUP__").join(group);
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-add-groups],[data-add-fwd]");
    if (!btn) return;
    if (btn.dataset.addGroups) {
      var table = document.querySelector('table[data-table="' + btn.dataset.addGroups + '"]');
      var n = Math.min(20, Math.max(1, parseInt(document.getElementById(btn.dataset.addGroups + "-groups").value, 10) || 1));
      var m = Math.min(10, Math.max(1, parseInt(document.getElementById(btn.dataset.addGroups + "-rows").value, 10) || 1));
      var body = table.tBodies[0], firstNew = null;
      for (var g = 0; g < n; g++) {
        var key = freshKey();
        body.insertAdjacentHTML("beforeend", groupRow(table, "first", key, key));
        if (!firstNew) firstNew = body.lastElementChild;
        for (var r = 1; r < m; r++) body.insertAdjacentHTML("beforeend", groupRow(table, "more", freshKey(), key));
      }
      firstNew.querySelector("input:not([type=hidden])").focus();
      return;
    }
    // "+ row": one more destination after the rule's last row.
    var group = btn.dataset.addFwd, tr = btn.closest("tr"), t = btn.closest("table"), last = tr;
    for (var next = tr.nextElementSibling; next; next = next.nextElementSibling) {
      var gi = next.querySelector('input[name$=".group"]');
      if (!gi || gi.value !== group) break;
      last = next;
    }
    last.insertAdjacentHTML("afterend", groupRow(t, "more", freshKey(), group));
    last.nextElementSibling.querySelector("input:not([type=hidden])").focus();
  });

  // Tables: "Add row" copies the table's <template> row with a fresh key.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-add]");
    if (!btn) return;
    var table = document.querySelector('table[data-table="' + btn.dataset.add + '"]');
    if (!table) return;
    var tpl = table.querySelector("template");
    var html = tpl.innerHTML.split("__KEY__").join("n" + Date.now() + "-" + (keySeq++));
    var body = table.tBodies[0];
    body.insertAdjacentHTML("beforeend", html);
    var first = body.lastElementChild.querySelector("input:not([type=hidden]),select");
    if (first) first.focus();
  });

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      ev.preventDefault();
      return;
    }
    // File uploads are multipart: send them with the CSRF header and show
    // the page the unit answers with.
    if (form.hasAttribute("data-js-upload")) {
      ev.preventDefault();
      fetch(form.action, { method: "POST", body: new FormData(form), headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" })
        .then(function (resp) {
          if (resp.redirected && resp.ok) { window.location.href = resp.url; return; }
          return resp.text().then(function (html) {
            history.replaceState(null, "", resp.url);
            document.open(); document.write(html); document.close();
          });
        })
        .catch(function (err) { window.alert("Upload failed: " + err); });
    }
  });

  // Confirmation countdown; at zero the unit has reverted: reload.
  var pending = document.getElementById("pending");
  if (pending) {
    var deadline = parseInt(pending.dataset.deadline, 10);
    var out = document.getElementById("countdown");
    var tick = function () {
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      out.textContent = left + " s";
      if (left <= 0) { setTimeout(function () { window.location.href = "/administration"; }, 1500); return; }
      setTimeout(tick, 250);
    };
    tick();
  }

  // Generic rendering of API answers as tables.
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  // Values for people: the API keeps machine values (nanoseconds, RFC 3339,
  // booleans); pages show durations, times, yes/no and states in words.
  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  function humanDur(ms) {
    if (ms === 0) return "0 s";
    var neg = ms < 0 ? "-" : ""; ms = Math.abs(ms);
    if (ms < 1000) return neg + (ms < 1 ? "< 1 ms" : Math.floor(ms) + " ms");
    var s = Math.floor(ms / 1000), parts = [], units = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
    for (var i = 0; i < units.length && parts.length < 2; i++) {
      if (s >= units[i][0]) { parts.push(Math.floor(s / units[i][0]) + " " + units[i][1]); s %= units[i][0]; }
      else if (parts.length) break;
    }
    return neg + parts.join(" ");
  }
  // Go duration strings ("1h2m3.5s", "150ms") as milliseconds, or NaN.
  function goDurMs(v) {
    var re = /(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)/g, m, ms = 0, seen = "";
    var mult = { h: 3600000, m: 60000, s: 1000, ms: 1, us: 0.001, "µs": 0.001, ns: 0.000001 };
    while ((m = re.exec(v)) !== null) { ms += parseFloat(m[1]) * mult[m[2]]; seen += m[0]; }
    return seen === v && v !== "" ? ms : NaN;
  }
  function humanTime(v) {
    var d = new Date(v);
    if (isNaN(d.getTime()) || d.getUTCFullYear() < 2) return "-";
    var now = new Date(), hms = pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + ":" + pad2(d.getUTCSeconds());
    if (d.toISOString().slice(0, 10) === now.toISOString().slice(0, 10)) return hms + " UTC";
    return d.toISOString().slice(0, 10) + " " + hms + " UTC";
  }
  var stateWords = { unchecked: "not checked yet", unmonitored: "not monitored (no OPTIONS)", no_answer: "no answer" };
  var nsKeys = { duration: 1, acd: 1, window: 1, talk: 1 };
  var secKeys = { expires_in: 1, ttl: 1 };
  var hideKeys = { preliminary_etag: 1, etag: 1, up: 1 }; // peers: "state" says it in words
  function cell(v, key) {
    if (v === null || v === undefined) return "";
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "number" && nsKeys[key]) return humanDur(v / 1e6);
    if (typeof v === "number" && secKeys[key]) return humanDur(v * 1000);
    if (Array.isArray(v) && v.every(function (x) { return typeof x !== "object"; })) return v.join(", ");
    if (typeof v === "object") return JSON.stringify(v);
    if (typeof v === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(v)) return humanTime(v);
    if (typeof v === "string" && !isNaN(goDurMs(v)) && /[hms]$/.test(v)) return humanDur(goDurMs(v));
    if (key === "state" && stateWords[v]) return stateWords[v];
    if (typeof v === "string" && v.indexOf("'palisade ") >= 0) return pageWords(v);
    return String(v);
  }
  // CLI commands named in the unit's messages, as the page and button here.
  function pageWords(v) {
    return v.replace(/with 'palisade ca import'/g, "on Basic Configuration → Certificates with “Import CA certificate”")
      .replace(/\('palisade ca import'\)/g, "(Basic Configuration → Certificates → “Import CA certificate”)")
      .replace(/(with )?'palisade cert import[^']*'/g, "with “Import” on the certificate's row of Basic Configuration → Certificates")
      .replace(/(with )?'palisade cert new[^']*'/g, "with “Create” on Basic Configuration → Certificates");
  }
  function label(k) { var l = k.replace(/_/g, " "); return l.charAt(0).toUpperCase() + l.slice(1); }
  function table(rows, onRow) {
    var cols = [];
    rows.forEach(function (r) { Object.keys(r).forEach(function (k) { if (cols.indexOf(k) < 0 && !hideKeys[k]) cols.push(k); }); });
    var t = el("table", null, "grid compact"), head = t.createTHead().insertRow();
    cols.forEach(function (c) { head.appendChild(el("th", label(c))); });
    var body = t.createTBody();
    rows.forEach(function (r) {
      var tr = body.insertRow();
      cols.forEach(function (c) {
        var v = r[c], td = el("td");
        if (c === "targets" && Array.isArray(v)) {
          td.appendChild(targetTable(v));
        } else if (v && typeof v === "object" && !(Array.isArray(v) && v.every(function (x) { return typeof x !== "object"; }))) {
          td.appendChild(render(v));
        } else {
          td.textContent = cell(v, c);
          if (typeof v === "string" && v.length > 32 && v.indexOf(" ") < 0) td.className = "long";
          else if (typeof v === "string" && /^\d{4}-\d\d-\d\dT/.test(v)) td.className = "nowrap";
        }
        tr.appendChild(td);
      });
      if (onRow) { tr.style.cursor = "pointer"; tr.addEventListener("click", function () { onRow(r); }); }
    });
    return t;
  }
  // A peer's targets (each resolved address of each of its names) with their
  // own keepalive state; the same words as the dashboard (targets.go).
  function targetTable(ts) {
    var t = el("table", null, "grid compact targets"), head = t.createTHead().insertRow();
    ["Target", "Address", "State", "Last answer"].forEach(function (h) { head.appendChild(el("th", h)); });
    var body = t.createTBody();
    ts.forEach(function (x) {
      var tr = body.insertRow(), out = x.out_until && new Date(x.out_until) > new Date();
      var held = x.held_until && new Date(x.held_until) > new Date();
      var word = out ? "out until " + humanTime(x.out_until) : held ? "tried last until " + humanTime(x.held_until) : !x.up ? "down" : (!x.last_status && !x.last_error) ? "not checked yet" : "up";
      var cls = out || !x.up ? "bad" : word === "up" ? "ok" : "warn";
      var answer = x.last_status ? String(x.last_status) + (x.last_error ? " (" + x.last_error + ")" : "") : (x.last_error || "-");
      tr.appendChild(el("td", x.host));
      tr.appendChild(el("td", x.address + (x.transport ? " (" + x.transport + ")" : ""), "nowrap"));
      var st = el("td"); st.appendChild(el("span", word, "tag " + cls)); tr.appendChild(st);
      tr.appendChild(el("td", answer));
    });
    return t;
  }
  function render(v, onRow) {
    if (Array.isArray(v)) {
      if (v.length === 0) return el("p", "None.", "hint");
      if (typeof v[0] === "object") return table(v, onRow);
      return el("p", v.join(", "));
    }
    if (v && typeof v === "object") {
      var t = el("table", null, "kv");
      Object.keys(v).forEach(function (k) {
        if (hideKeys[k]) return;
        var tr = t.insertRow();
        tr.appendChild(el("th", label(k)));
        var td = el("td");
        var x = v[k];
        if (k === "config" && x && typeof x === "object" && "pending_confirm" in x) td.appendChild(configState(x));
        else if (x && typeof x === "object") td.appendChild(render(x, onRow)); else td.textContent = cell(x, k);
        tr.appendChild(td);
      });
      return t;
    }
    return el("p", cell(v));
  }
  // The configuration lifecycle's state in sentences.
  function configState(c) {
    var ul = el("ul", null, "plain");
    var add = function (t, cls) { ul.appendChild(el("li", t, cls)); };
    if (c.pending_confirm) add("An applied configuration is on trial: save it before " + humanTime(c.confirm_deadline) + " or the previous one runs again.", "warn-text");
    else if (c.running_version > 0) add("Running the saved configuration, version " + c.running_version + ".");
    else add("Running a configuration that is not saved.");
    add(c.preliminary_changed ? "The preliminary configuration has changes that are not applied." : "No preliminary changes waiting to be applied.");
    if (c.last_apply_error) add("Last apply failed: " + c.last_apply_error, "problem-text");
    if (c.last_revert_reason) add("Last revert: " + c.last_revert_reason);
    return ul;
  }
  function load(box, url, onRow) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        box.innerHTML = "";
        if (!res.ok) { box.appendChild(el("p", res.body.error || "request failed", "problem")); return; }
        box.appendChild(render(res.body, onRow));
      })
      .catch(function (err) { box.innerHTML = ""; box.appendChild(el("p", "Cannot reach the unit: " + err, "problem")); });
  }

  // Live status boxes on configuration pages (registrations, peers).
  document.querySelectorAll("[data-live]").forEach(function (box) {
    var again = function () { load(box, box.dataset.live); };
    again();
    setInterval(again, parseInt(box.dataset.refresh, 10) || 5000);
  });

  // The dashboard re-reads itself (server rendered) every few seconds.
  var dash = document.getElementById("dashboard");
  if (dash && dash.dataset.reload) {
    setInterval(function () {
      fetch(location.href, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); }).then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("dashboard");
        if (!fresh) return;
        var open = dash.querySelector("details[open]");
        dash.innerHTML = fresh.innerHTML;
        if (open && open.id) { var d = document.getElementById(open.id); if (d) d.open = true; }
      }).catch(function () {});
    }, parseInt(dash.dataset.reload, 10) || 10000);
  }

  var status = document.getElementById("status");
  if (status) {
    var refresh = function () {
      fetch(status.dataset.src, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (all) {
        status.innerHTML = "";
        Object.keys(all).sort().forEach(function (name) {
          var sec = el("section", null, "card status-section");
          sec.appendChild(el("h2", name.charAt(0).toUpperCase() + name.slice(1)));
          sec.appendChild(render(all[name]));
          status.appendChild(sec);
        });
      }).catch(function (err) { status.textContent = "Cannot reach the unit: " + err; });
    };
    refresh();
    setInterval(refresh, parseInt(status.dataset.refresh, 10) || 5000);
  }

  var calls = document.getElementById("calls");
  if (calls) {
    var ladder = document.getElementById("ladder"), msg = document.getElementById("sipmsg");
    var showCall = function (c) {
      var id = c.id || (c.call_ids && c.call_ids[0]);
      if (!id) return;
      var dl = document.getElementById("call-downloads");
      dl.hidden = false;
      document.getElementById("call-pcap").href = "/api/v1/trace.pcap?call=" + encodeURIComponent(id);
      document.getElementById("call-json").href = "/api/v1/calls/" + encodeURIComponent(id) + "/trace";
      fetch("/api/v1/calls/" + encodeURIComponent(id) + "/ladder.svg", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (svg) { ladder.innerHTML = svg; })
        .catch(function (e) { ladder.textContent = "No call flow for this call (" + e + ")."; });
    };
    // Each arrow of the ladder is a link whose <title> holds the message.
    ladder.addEventListener("click", function (ev) {
      var a = ev.target.closest("[data-message],[data-index]");
      if (!a) return;
      ev.preventDefault();
      var title = a.querySelector("title");
      msg.hidden = false;
      msg.textContent = a.getAttribute("data-message") || (title ? title.textContent : "");
    });
    // Free text: the unit matches numbers, Call-IDs and results (q=).
    // The call list has fixed columns (whatever call is on top), failed
    // calls highlighted and a link per row to the call's flow.
    var media = function (m) {
      if (!m) return "-";
      var pk = 0, lost = 0, j = 0;
      m.forEach(function (l) { pk += l.packets_in || 0; lost += l.lost || 0; j = Math.max(j, l.jitter_ms || 0); });
      if (!pk && !lost) return "none";
      return pk + " packets in, " + (lost ? (100 * lost / (pk + lost)).toFixed(1) + " % lost" : "none lost") + ", jitter " + j.toFixed(1) + " ms";
    };
    var callTable = function (rows) {
      calls.innerHTML = "";
      if (!rows.length) { calls.appendChild(el("p", "No calls.", "hint")); return; }
      var wrap = el("div", null, "scroll"), t = el("table", null, "grid compact calls"), head = t.createTHead().insertRow();
      ["Start", "Direction", "From", "To", "State", "Result", "Talk time", "Media", ""].forEach(function (c) { head.appendChild(el("th", c)); });
      var body = t.createTBody();
      rows.forEach(function (c) {
        var tr = body.insertRow();
        tr.className = c.failed ? "failed" : "";
        tr.dataset.call = c.id;
        var result = c.state === "active" ? (c.answer ? "talking" : "ringing") : ((c.code ? c.code + " " : "") + (c.reason || ""));
        [[humanTime(c.start), "nowrap"], [c.direction || "", ""], [c.from, "long"], [c.to, "long"], [c.state === "active" ? "in progress" : "ended", "nowrap"],
          [result, c.failed ? "nowrap bad-text" : "nowrap"], [c.answer ? humanDur(c.duration / 1e6) : "-", "nowrap"], [media(c.media), ""]].forEach(function (v) {
          tr.appendChild(el("td", v[0], v[1]));
        });
        var td = el("td", null, "nowrap");
        if (c.traced) {
          var a = el("a", "Call flow");
          a.href = "/tools/calls?call=" + encodeURIComponent(c.id) + "#ladder";
          a.addEventListener("click", function (ev) { ev.preventDefault(); showCall(c); ladder.scrollIntoView(); });
          td.appendChild(a);
        } else td.textContent = "no trace";
        tr.appendChild(td);
      });
      wrap.appendChild(t);
      calls.appendChild(wrap);
    };
    var search = function (q) {
      fetch(calls.dataset.src + (q ? "?q=" + encodeURIComponent(q) : ""), { credentials: "same-origin" })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          if (!res.ok) { calls.innerHTML = ""; calls.appendChild(el("p", res.body.error || "request failed", "problem")); return; }
          callTable(res.body);
        })
        .catch(function (err) { calls.innerHTML = ""; calls.appendChild(el("p", "Cannot reach the unit: " + err, "problem")); });
    };
    var wanted = new URLSearchParams(location.search).get("call");
    if (wanted) { document.getElementById("call-q").value = wanted; showCall({ id: wanted }); }
    document.getElementById("call-search").addEventListener("submit", function (ev) { ev.preventDefault(); search(document.getElementById("call-q").value); });
    search(wanted || "");
  }

  // TLS diagnosis: post the form to the API as JSON (with the CSRF header).
  var diag = document.getElementById("diagnose-form");
  if (diag) {
    var dout = document.getElementById("diagnose-result");
    diag.addEventListener("submit", function (ev) {
      ev.preventDefault();
      dout.textContent = "Connecting…";
      var body = { address: diag.elements.address.value.trim() };
      if (diag.elements.sni.value.trim()) body.sni = diag.elements.sni.value.trim();
      fetch(diag.dataset.api, { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body) })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          dout.innerHTML = "";
          if (!res.ok) { dout.appendChild(el("p", res.body.error || "request failed", "problem")); return; }
          dout.appendChild(render(res.body));
        })
        .catch(function (err) { dout.textContent = "Failed: " + err; });
    });
  }

  // API tokens on the Access Control page.
  var tokens = document.getElementById("tokens");
  if (tokens) {
    var api = function (method, url, body) {
      var h = { "X-CSRF-Token": csrf };
      if (body) h["Content-Type"] = "application/json";
      return fetch(url, { method: method, credentials: "same-origin", headers: h, body: body ? JSON.stringify(body) : undefined })
        .then(function (r) {
          if (r.status === 204) return {};
          return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.status); return j; });
        });
    };
    var list = function () {
      api("GET", tokens.dataset.src).then(function (ts) {
        tokens.innerHTML = "";
        if (!ts.length) { tokens.appendChild(el("p", "No API tokens.", "hint")); return; }
        var t = el("table", null, "grid compact"), head = t.createTHead().insertRow();
        ["Name", "Id", "Made", "By", ""].forEach(function (c) { head.appendChild(el("th", c)); });
        var body = t.createTBody();
        ts.forEach(function (tok) {
          var tr = body.insertRow();
          [tok.name, tok.id, String(tok.created).replace("T", " ").replace(/\.[0-9]*Z$/, " UTC"), tok.author].forEach(function (v) { tr.appendChild(el("td", v)); });
          var td = el("td"), b = el("button", "Revoke", "small danger");
          b.type = "button";
          b.addEventListener("click", function () {
            if (window.confirm("Revoke the token " + tok.name + "?")) api("DELETE", "/api/v1/tokens/" + encodeURIComponent(tok.id)).then(list);
          });
          td.appendChild(b); tr.appendChild(td);
        });
        tokens.appendChild(t);
      }).catch(function (e) { tokens.textContent = "Cannot list tokens: " + e.message; });
    };
    document.getElementById("token-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = ev.target, out = document.getElementById("token-secret");
      api("POST", "/api/v1/tokens", { name: f.elements.name.value.trim() }).then(function (t) {
        out.hidden = false;
        out.textContent = "Token " + t.name + " (copy it now, it is not shown again):\n" + t.token;
        f.reset();
        list();
      }).catch(function (e) { out.hidden = false; out.textContent = "Failed: " + e.message; });
    });
    list();
  }
})();
