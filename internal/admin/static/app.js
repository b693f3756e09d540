// Gatehouse dashboard: polls the admin API and draws live figures. No dependencies.
(function () {
  "use strict";
  var POLL_MS = 2000, HISTORY = 60, SPARK = 30;
  var token = sessionStorage.getItem("gatehouse-admin-token") || "";
  var prev = null;            // previous /api/v1/stats answer
  var hist = { rps: [], err: [], p99: [] };
  var routeHist = {};         // route -> [rps...]
  var routes = [];            // /api/v1/routes
  var compiledAt = "";

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function api(path, opts) {
    opts = opts || {};
    opts.headers = opts.headers || {};
    if (token) opts.headers["Authorization"] = "Bearer " + token;
    return fetch(path, opts).then(function (r) {
      if (r.status === 401) { $("auth").classList.remove("hidden"); throw new Error("unauthorized"); }
      if (!r.ok) throw new Error(path + ": HTTP " + r.status);
      return r.json();
    });
  }

  function fmtRate(v) {
    if (v === null || isNaN(v)) return "–";
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  function fmtLat(s) {
    if (s === null || isNaN(s)) return "–";
    if (s >= 1) return s.toFixed(2) + " s";
    var ms = s * 1000;
    if (ms >= 10) return ms.toFixed(0) + " ms";
    return ms.toFixed(1) + " ms";
  }
  function fmtPct(v) { return (v === null || isNaN(v)) ? "–" : (v * 100).toFixed(v >= 0.1 ? 0 : 1) + "%"; }
  function fmtDur(sec) {
    sec = Math.floor(sec);
    var d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60), s = sec % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }
  function fmtTime(t) { var d = new Date(t); return isNaN(d) ? "–" : d.toLocaleTimeString(); }
  function fmtDateTime(t) { var d = new Date(t); return isNaN(d) ? "–" : d.toLocaleDateString() + " " + d.toLocaleTimeString(); }

  // quantile estimates q from cumulative bucket deltas the way Prometheus' histogram_quantile does.
  function quantile(q, bounds, buckets, count) {
    if (!count) return null;
    var rank = q * count;
    for (var i = 0; i < bounds.length; i++) {
      if (buckets[i] >= rank) {
        var lo = i === 0 ? 0 : bounds[i - 1], loCount = i === 0 ? 0 : buckets[i - 1];
        var inBucket = buckets[i] - loCount;
        if (inBucket <= 0) return bounds[i];
        return lo + (bounds[i] - lo) * (rank - loCount) / inBucket;
      }
    }
    return bounds[bounds.length - 1];
  }

  function push(arr, v, n) { arr.push(v); while (arr.length > n) arr.shift(); }

  function drawChart(svg, data) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var vals = data.map(function (v) { return v === null || isNaN(v) ? 0 : v; });
    if (vals.length < 2) return;
    // Short histories spread over at least 12 slots so a fresh page draws a readable line.
    var slots = Math.max(vals.length, 12);
    var max = Math.max.apply(null, vals) || 1, w = 300, h = 60, step = w / (slots - 1);
    var off = (slots - vals.length) * step, pts = [];
    vals.forEach(function (v, i) { pts.push((off + i * step).toFixed(1) + "," + (h - 2 - v / max * (h - 6)).toFixed(1)); });
    var ns = "http://www.w3.org/2000/svg";
    var area = document.createElementNS(ns, "polygon");
    area.setAttribute("class", "area");
    area.setAttribute("points", off.toFixed(1) + "," + h + " " + pts.join(" ") + " " + w + "," + h);
    var line = document.createElementNS(ns, "polyline");
    line.setAttribute("class", "line");
    line.setAttribute("points", pts.join(" "));
    svg.appendChild(area);
    svg.appendChild(line);
  }

  function spark(data) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 110 22");
    svg.setAttribute("preserveAspectRatio", "none");
    if (data.length > 1) {
      var slots = Math.max(data.length, 12);
      var max = Math.max.apply(null, data) || 1, step = 110 / (slots - 1), off = (slots - data.length) * step;
      var line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", data.map(function (v, i) {
        return (off + i * step).toFixed(1) + "," + (21 - v / max * 19).toFixed(1);
      }).join(" "));
      svg.appendChild(line);
    }
    return svg;
  }

  function matchText(r) {
    var span = el("span");
    (r.methods && r.methods.length ? r.methods : ["ANY"]).forEach(function (m) { span.appendChild(el("span", "method", m)); });
    var txt = (r.hosts && r.hosts.length ? r.hosts.join(",") : "") + r.path;
    var extra = [];
    Object.keys(r.headers || {}).forEach(function (k) { extra.push(k + ": " + r.headers[k]); });
    Object.keys(r.query || {}).forEach(function (k) { extra.push("?" + k + "=" + r.query[k]); });
    span.appendChild(document.createTextNode(txt + (extra.length ? "  [" + extra.join(", ") + "]" : "")));
    return span;
  }

  function renderRoutes(live) {
    var tbody = $("routes").querySelector("tbody");
    tbody.textContent = "";
    var rows = routes.slice();
    if (live["-"] && live["-"].total > 0) rows.push({ name: "-", path: "(no matching route)", service: "-", methods: [], plugins: [], none: true });
    if (!rows.length) { var tr = el("tr"); var td = el("td", "empty", "No routes configured."); td.colSpan = 10; tr.appendChild(td); tbody.appendChild(tr); return; }
    rows.forEach(function (r) {
      var l = live[r.name] || {};
      var tr = el("tr");
      tr.dataset.route = r.name;
      var name = el("td", null, r.none ? "(unmatched)" : r.name);
      (r.plugins || []).forEach(function (p) { name.appendChild(el("span", "plugin", p)); });
      tr.appendChild(name);
      var m = el("td", "match"); if (r.none) m.textContent = r.path; else m.appendChild(matchText(r)); tr.appendChild(m);
      tr.appendChild(el("td", null, r.service));
      var rps = el("td", "num rps", fmtRate(l.rps)); rps.dataset.route = r.name; tr.appendChild(rps);
      var sp = el("td"); sp.appendChild(spark(routeHist[r.name] || [])); tr.appendChild(sp);
      var e = el("td", "num", fmtPct(l.err)); if (l.err > 0.01) e.classList.add("err-hi"); tr.appendChild(e);
      tr.appendChild(el("td", "num", fmtLat(l.p50)));
      tr.appendChild(el("td", "num", fmtLat(l.p90)));
      tr.appendChild(el("td", "num", fmtLat(l.p99)));
      tr.appendChild(el("td", "num", l.total !== undefined ? String(l.total) : "0"));
      tbody.appendChild(tr);
    });
  }

  function renderServices(list) {
    var box = $("services");
    box.textContent = "";
    if (!list.length) { box.appendChild(el("div", "empty", "No services configured.")); return; }
    list.forEach(function (s) {
      var card = el("div", "svc");
      var h = el("h3", null, s.name);
      var up = s.targets.filter(function (t) { return t.healthy; }).length;
      h.appendChild(el("span", "badge" + (s.breaker && s.breaker !== "closed" ? " " + s.breaker : ""),
        s.breaker ? "breaker " + s.breaker.replace("_", "-") : up + "/" + s.targets.length + " healthy"));
      card.appendChild(h);
      card.appendChild(el("div", "sub", s.balancer + " · routes: " + (s.routes.length ? s.routes.join(", ") : "none")));
      var t = el("table");
      s.targets.forEach(function (tg) {
        var tr = el("tr");
        var u = el("td", "url");
        var dot = el("span", "health " + (tg.healthy ? "up" : "down"));
        dot.title = tg.healthy ? "healthy" : "unhealthy";
        u.appendChild(dot);
        u.appendChild(document.createTextNode(tg.url));
        if (tg.detail) u.title = tg.detail;
        tr.appendChild(u);
        tr.appendChild(el("td", "num", "weight " + tg.weight));
        tr.appendChild(el("td", "num", tg.in_flight + " in flight"));
        var b = el("td", "num");
        if (tg.breaker) b.appendChild(el("span", "badge " + tg.breaker, tg.breaker.replace("_", "-")));
        tr.appendChild(b);
        t.appendChild(tr);
      });
      card.appendChild(t);
      box.appendChild(card);
    });
  }

  function renderReloads(list) {
    var ul = $("reloads");
    ul.textContent = "";
    if (!list.length) { ul.appendChild(el("li", "empty", "No reloads since start (the config loaded at " + fmtDateTime(compiledAt) + ").")); return; }
    list.slice().reverse().slice(0, 15).forEach(function (r) {
      var li = el("li");
      li.appendChild(el("span", "when", fmtDateTime(r.time)));
      li.appendChild(el("span", r.ok ? "ok-text" : "bad-text", r.ok ? "applied" : "rejected"));
      if (r.error) li.appendChild(el("span", "err", r.error));
      ul.appendChild(li);
    });
  }

  function onStats(st) {
    $("ready").textContent = st.draining ? "draining" : "ready";
    $("ready").className = "pill " + (st.draining ? "bad" : "ok");
    $("uptime").textContent = fmtDur(st.uptime_seconds);
    $("compiled").textContent = fmtTime(st.config_compiled_at);
    $("inflight").textContent = String(st.in_flight);
    var live = {}, tot = { n: 0, e: 0, b: st.buckets.map(function () { return 0; }), all: 0 };
    var dt = prev ? (new Date(st.time) - new Date(prev.time)) / 1000 : 0;
    var before = {};
    if (prev) prev.routes.forEach(function (r) { before[r.route + "\u0000" + r.service] = r; });
    st.routes.forEach(function (r) {
      var p = before[r.route + "\u0000" + r.service];
      var l = live[r.route] || (live[r.route] = { total: 0, n: 0, e: 0, b: st.buckets.map(function () { return 0; }) });
      l.total += r.requests; tot.all += r.requests;
      if (!p || dt <= 0) return;
      var n = Math.max(0, r.requests - p.requests), e = Math.max(0, r.errors - p.errors);
      l.n += n; l.e += e; tot.n += n; tot.e += e;
      for (var i = 0; i < st.buckets.length; i++) {
        var d = Math.max(0, r.buckets[i] - p.buckets[i]);
        l.b[i] += d; tot.b[i] += d;
      }
    });
    Object.keys(live).forEach(function (k) {
      var l = live[k];
      if (dt > 0) {
        l.rps = l.n / dt; l.err = l.n ? l.e / l.n : 0;
        l.p50 = quantile(0.5, st.buckets, l.b, l.n); l.p90 = quantile(0.9, st.buckets, l.b, l.n); l.p99 = quantile(0.99, st.buckets, l.b, l.n);
      } else { l.rps = null; l.err = null; l.p50 = l.p90 = l.p99 = null; }
      if (dt > 0) push(routeHist[k] || (routeHist[k] = []), l.rps || 0, SPARK);
    });
    if (dt > 0) {
      var rps = tot.n / dt, err = tot.n ? tot.e / tot.n : 0;
      var p50 = quantile(0.5, st.buckets, tot.b, tot.n), p99 = quantile(0.99, st.buckets, tot.b, tot.n);
      $("total-rps").textContent = fmtRate(rps);
      $("total-err").textContent = fmtPct(err);
      $("total-lat").textContent = tot.n ? fmtLat(p50) + " / " + fmtLat(p99) : "–";
      push(hist.rps, rps, HISTORY); push(hist.err, err * 100, HISTORY); push(hist.p99, p99 || 0, HISTORY);
      drawChart($("rps-chart"), hist.rps); drawChart($("err-chart"), hist.err); drawChart($("lat-chart"), hist.p99);
    }
    $("totals").textContent = tot.all + " requests since start" + (st.metrics ? "" : " (metrics disabled)");
    renderRoutes(live);
    if (st.config_compiled_at !== compiledAt) { compiledAt = st.config_compiled_at; loadRoutes(); loadReloads(); }
    prev = st;
  }

  function loadRoutes() { return api("/api/v1/routes").then(function (d) { routes = d.routes; }); }
  function loadReloads() { return api("/api/v1/reloads").then(function (d) { renderReloads(d.reloads); }); }

  var tick = 0;
  function poll() {
    Promise.all([api("/api/v1/stats"), api("/api/v1/services")]).then(function (res) {
      onStats(res[0]);
      renderServices(res[1].services);
      if (++tick % 5 === 0) loadReloads();
      $("live-dot").className = "dot on";
      $("updated").textContent = "live · " + new Date().toLocaleTimeString();
      document.body.dataset.polls = String(tick);
    }).catch(function (err) {
      $("live-dot").className = "dot off";
      $("updated").textContent = err.message === "unauthorized" ? "token required" : "disconnected";
    }).then(function () { setTimeout(poll, POLL_MS); });
  }

  $("auth-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("gatehouse-admin-token", token);
    $("auth").classList.add("hidden");
    loadRoutes().then(loadReloads).catch(function () {});
  });

  loadRoutes().then(loadReloads).catch(function () {}).then(poll);
})();
