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
  function cell(v) {
    if (v === null || v === undefined) return "";
    if (Array.isArray(v) && v.every(function (x) { return typeof x !== "object"; })) return v.join(", ");
    if (typeof v === "object") return JSON.stringify(v);
    // RFC 3339 times: drop the fraction, show UTC plainly.
    if (typeof v === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(v)) return v.replace("T", " ").replace(/\.\d+/, "").replace(/Z$/, " UTC");
    return String(v);
  }
  function table(rows, onRow) {
    var cols = [];
    rows.forEach(function (r) { Object.keys(r).forEach(function (k) { if (cols.indexOf(k) < 0) cols.push(k); }); });
    var t = el("table", null, "grid compact"), head = t.createTHead().insertRow();
    cols.forEach(function (c) { head.appendChild(el("th", c.replace(/_/g, " "))); });
    var body = t.createTBody();
    rows.forEach(function (r) {
      var tr = body.insertRow();
      cols.forEach(function (c) {
        var v = r[c], td = el("td");
        if (v && typeof v === "object" && !(Array.isArray(v) && v.every(function (x) { return typeof x !== "object"; }))) {
          td.appendChild(render(v));
        } else {
          td.textContent = cell(v);
          if (typeof v === "string" && v.length > 32 && v.indexOf(" ") < 0) td.className = "long";
        }
        tr.appendChild(td);
      });
      if (onRow) { tr.style.cursor = "pointer"; tr.addEventListener("click", function () { onRow(r); }); }
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
        var tr = t.insertRow();
        tr.appendChild(el("th", k.replace(/_/g, " ")));
        var td = el("td");
        var x = v[k];
        if (x && typeof x === "object") td.appendChild(render(x, onRow)); else td.textContent = cell(x);
        tr.appendChild(td);
      });
      return t;
    }
    return el("p", cell(v));
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
    var search = function (q) { load(calls, calls.dataset.src + (q ? "?q=" + encodeURIComponent(q) : ""), showCall); };
    document.getElementById("call-search").addEventListener("submit", function (ev) { ev.preventDefault(); search(document.getElementById("call-q").value); });
    search("");
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
