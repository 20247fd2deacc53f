/* status.js - fills the CairnFS status page from /api/status (meta/status_page.c says what is
 * in it), polled every POLL_MS (?poll=MS changes it). Rates are the differences of the
 * cumulative counters between two polls divided by the time between them (the replica's
 * clock, now_ms); the graphs keep the last WINDOW_MS of them.
 *
 * Every name from the cluster (servers, zones, clients, addresses) goes into the document as
 * text (textContent), never as markup. Each graph's canvas carries data-samples (points drawn)
 * and data-peak (largest value drawn), and the body data-polls and data-state, for people and
 * for the browser test. */
'use strict';
(function () {
  var q = new URLSearchParams(window.location.search);
  var POLL_MS = Math.min(60000, Math.max(200, parseInt(q.get('poll'), 10) || 1500));
  var WINDOW_MS = 5 * 60 * 1000;
  var COLORS = { reads: '#2563eb', writes: '#9333ea', meta: '#1f9d55' };

  /* Counters move when a chunk server's heartbeat or a mount's report arrives (every second
   * or two), so a rate is taken over at least RATE_MS: against the oldest status polled
   * within that window (or the one before it). */
  var RATE_MS = 3000;
  var history = []; /* the statuses of the last RATE_MS and one before, oldest first */
  var prev = null;  /* the last status */
  var polls = 0;
  var graphs = {
    ops: { canvas: 'graph-ops', legend: 'legend-ops', unit: fmtRate,
           lines: [['reads', 'chunk reads'], ['writes', 'chunk writes'], ['meta', 'meta ops']],
           points: [] },
    bytes: { canvas: 'graph-bytes', legend: 'legend-bytes', unit: fmtBytesRate,
             lines: [['reads', 'read'], ['writes', 'written']], points: [] }
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fmtBytes(n) {
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], i = 0;
    n = Number(n) || 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) : String(Math.round(n * 10) / 10)) +
      ' ' + u[i];
  }
  function fmtBytesRate(n) { return fmtBytes(n) + '/s'; }
  function fmtNum(n) {
    n = Number(n) || 0;
    if (n >= 1e9) return (n / 1e9).toFixed(1) + ' G';
    if (n >= 1e6) return (n / 1e6).toFixed(1) + ' M';
    if (n >= 1e4) return (n / 1e3).toFixed(1) + ' k';
    return String(Math.round(n * 10) / 10);
  }
  function fmtRate(n) { return fmtNum(n) + '/s'; }
  function fmtAgo(ms) {
    var s = Math.round((Number(ms) || 0) / 1000);
    return s < 1 ? 'now' : s < 120 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
  }

  /* A counter's growth (0 when it went back: the server or client restarted). */
  function delta(cur, old) {
    cur = Number(cur) || 0;
    old = Number(old) || 0;
    return cur >= old ? cur - old : 0;
  }

  function byKey(list, key) {
    var m = {};
    (list || []).forEach(function (x) { m[x[key]] = x; });
    return m;
  }

  /* The status to take rates of st against: the oldest of the window (null: none yet). */
  function rateBase(st) {
    if (prev && st.self !== prev.self) history = []; /* another replica answers now */
    while (history.length > 1 && history[1].now_ms <= st.now_ms - RATE_MS) history.shift();
    var base = history.length && history[0].now_ms < st.now_ms ? history[0] : null;
    history.push(st);
    return base;
  }

  /* Rates of the servers and sessions of st against base (null when there is none). */
  function rates(st, base) {
    if (!base) return null;
    var dt = (st.now_ms - base.now_ms) / 1000;
    var r = { t: st.now_ms, dt: dt, srv: {}, ses: {},
              reads: 0, writes: 0, read_bytes: 0, write_bytes: 0, meta: 0 };
    var ps = byKey(base.servers, 'id');
    st.servers.forEach(function (s) {
      var o = ps[s.id];
      var x = { reads: 0, writes: 0, read_bytes: 0, write_bytes: 0 };
      if (o) {
        ['reads', 'writes', 'read_bytes', 'write_bytes'].forEach(function (k) {
          x[k] = delta(s[k], o[k]) / dt;
          r[k] += x[k];
        });
      }
      r.srv[s.id] = x;
    });
    var pc = byKey(base.sessions.list, 'session');
    st.sessions.list.forEach(function (c) {
      var o = pc[c.session];
      var m = o ? delta(c.meta_ops, o.meta_ops) / dt : 0;
      r.ses[c.session] = { meta: m };
      r.meta += m;
    });
    return r;
  }

  /* ---- graphs ---------------------------------------------------------------------------- */

  function addPoint(g, t, values) {
    g.points.push({ t: t, v: values });
    while (g.points.length && g.points[0].t < t - WINDOW_MS) g.points.shift();
  }

  function drawLegend(g) {
    var lg = $(g.legend);
    if (lg.childElementCount) return;
    g.lines.forEach(function (l) {
      var s = el('span');
      var i = el('i');
      i.style.background = COLORS[l[0]];
      s.appendChild(i);
      s.appendChild(document.createTextNode(l[1]));
      lg.appendChild(s);
    });
  }

  /* 1, 2 or 5 times a power of ten, at least v (1 when v is 0); with binary, that many
   * KiB, MiB... (round numbers on a bytes scale). */
  function niceMax(v, binary) {
    if (!(v > 0)) return 1;
    var unit = 1;
    while (binary && v >= 1024 * unit) unit *= 1024;
    v /= unit;
    var e = Math.pow(10, Math.floor(Math.log10(v))), f = v / e;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * e * unit;
  }

  function draw(g) {
    var cv = $(g.canvas);
    var dpr = window.devicePixelRatio || 1;
    var w = Math.max(200, cv.clientWidth || 560), h = cv.clientHeight || 180;
    if (cv.width !== Math.round(w * dpr)) cv.width = Math.round(w * dpr);
    if (cv.height !== Math.round(h * dpr)) cv.height = Math.round(h * dpr);
    var c = cv.getContext('2d');
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, w, h);
    var left = 70, right = w - 8, top = 8, bottom = h - 20;
    var peak = 0;
    g.points.forEach(function (p) {
      g.lines.forEach(function (l) { peak = Math.max(peak, p.v[l[0]] || 0); });
    });
    var ymax = niceMax(peak * 1.1, g.unit === fmtBytesRate);
    var now = g.points.length ? g.points[g.points.length - 1].t : 0;
    function x(t) { return right - (now - t) / WINDOW_MS * (right - left); }
    function y(v) { return bottom - v / ymax * (bottom - top); }

    c.strokeStyle = '#e3e6eb';
    c.fillStyle = '#6b7280';
    c.font = '11px system-ui, sans-serif';
    c.lineWidth = 1;
    [0, 0.5, 1].forEach(function (f) {
      var yy = Math.round(y(ymax * f)) + 0.5;
      c.beginPath(); c.moveTo(left, yy); c.lineTo(right, yy); c.stroke();
      c.fillText(g.unit(ymax * f), 4, yy + 4);
    });
    c.fillText('-' + WINDOW_MS / 60000 + ' min', left, h - 4);
    c.fillText('now', right - 22, h - 4);

    c.lineWidth = 2;
    g.lines.forEach(function (l) {
      c.strokeStyle = COLORS[l[0]];
      c.beginPath();
      g.points.forEach(function (p, i) {
        var px = x(p.t), py = y(p.v[l[0]] || 0);
        if (i) c.lineTo(px, py); else c.moveTo(px, py);
      });
      c.stroke();
    });
    if (!g.points.length) c.fillText('waiting for two polls…', left + 10, top + 20);
    cv.dataset.samples = String(g.points.length);
    cv.dataset.peak = String(peak);
  }

  /* ---- tables ---------------------------------------------------------------------------- */

  function usageBar(used, capacity) {
    var bar = el('div', null, 'bar');
    var f = el('div', null, 'fill');
    var pct = capacity > 0 ? Math.min(100, used / capacity * 100) : 0;
    f.style.width = pct.toFixed(1) + '%';
    if (pct >= 90) f.classList.add('bad'); else if (pct >= 75) f.classList.add('warn');
    bar.appendChild(f);
    return bar;
  }

  function row(cells) {
    var tr = el('tr');
    cells.forEach(function (c) {
      var td = el('td', null, c.cls);
      if (c.node) td.appendChild(c.node); else td.textContent = String(c.text);
      if (c.title) td.title = c.title;
      tr.appendChild(td);
    });
    return tr;
  }

  function emptyRow(text, span) {
    var tr = el('tr', null, 'empty');
    var td = el('td', text);
    td.colSpan = span;
    tr.appendChild(td);
    return tr;
  }

  function fillServers(st, r) {
    var rows = st.servers.map(function (s) {
      var state = !s.alive ? 'down' : s.draining ? 'draining' : 'up';
      var used = Math.max(0, s.capacity - s.free);
      var use = el('div');
      use.appendChild(usageBar(used, s.capacity));
      use.appendChild(el('div', fmtBytes(used) + ' of ' + fmtBytes(s.capacity) +
                         (s.capacity ? ' (' + (used / s.capacity * 100).toFixed(1) + '%)' : ''),
                         'small'));
      var x = r && r.srv[s.id];
      return row([
        { text: s.addr, title: 'id ' + s.id },
        { text: s.zone || '–' },
        { text: state, cls: 'state-' + state, title: 'last heartbeat ' + fmtAgo(s.seen_ms_ago) },
        { node: use },
        { text: fmtNum(s.chunks), cls: 'num' },
        { text: x ? fmtNum(x.reads) : '–', cls: 'num',
          title: x ? fmtBytesRate(x.read_bytes) : '' },
        { text: x ? fmtNum(x.writes) : '–', cls: 'num',
          title: x ? fmtBytesRate(x.write_bytes) : '' },
        { text: fmtBytes(s.read_bytes), cls: 'num', title: fmtNum(s.reads) + ' reads' },
        { text: fmtBytes(s.write_bytes), cls: 'num', title: fmtNum(s.writes) + ' writes' }
      ]);
    });
    if (!rows.length)
      rows.push(emptyRow(st.role === 'leader' ? 'no chunk server registered'
                                              : 'the leader knows the chunk servers', 9));
    $('servers').tBodies[0].replaceChildren.apply($('servers').tBodies[0], rows);
  }

  function fillHealth(st) {
    var h = st.chunks;
    var items = [['Chunks', h.chunks], ['At their number of copies', h.full],
                 ['Under-replicated', h.under, true], ['Missing (no copy)', h.missing, true],
                 ['Over-replicated', h.over], ['Stale copies', h.stale, true],
                 ['Bad copies', h.bad, true], ['Repair backlog', h.backlog],
                 ['Repair rate', fmtBytesRate(h.repair_bytes_per_s)],
                 ['Repaired so far', fmtNum(h.repaired) + ' (' + fmtBytes(h.repaired_bytes) + ')']];
    var rows = items.map(function (it) {
      var bad = it[2] && Number(it[1]) > 0;
      return row([{ text: it[0] },
                  { text: typeof it[1] === 'number' ? fmtNum(it[1]) : it[1],
                    cls: 'num' + (bad ? ' count-bad' : '') }]);
    });
    if (!h.scanned) rows.push(emptyRow('first scan of the chunks not finished yet', 2));
    $('health').tBodies[0].replaceChildren.apply($('health').tBodies[0], rows);
  }

  function fillReplicas(st) {
    var rows = st.replicas.map(function (m) {
      var isLeader = m.addr === st.leader;
      return row([{ text: m.id }, { text: m.addr + (m.addr === st.self ? ' (this one)' : '') },
                  { text: m.role + (isLeader ? ', leader' : '') },
                  { text: m.reachable ? 'yes' : 'no', cls: m.reachable ? '' : 'state-down' }]);
    });
    if (!rows.length) rows.push(emptyRow('no Raft group yet', 4));
    $('replicas').tBodies[0].replaceChildren.apply($('replicas').tBodies[0], rows);
  }

  function fillSessions(st, r) {
    var rows = st.sessions.list.map(function (c) {
      var x = r && r.ses[c.session];
      return row([{ text: c.name, title: 'session ' + c.session }, { text: c.peer },
                  { text: x ? fmtNum(x.meta) : '–', cls: 'num' },
                  { text: fmtBytes(c.read_bytes), cls: 'num', title: fmtNum(c.reads) + ' reads' },
                  { text: fmtBytes(c.write_bytes), cls: 'num',
                    title: fmtNum(c.writes) + ' writes' },
                  { text: fmtAgo(c.seen_ms_ago), cls: 'num' }]);
    });
    if (!rows.length)
      rows.push(emptyRow(st.role === 'leader' ? 'no client has reported yet'
                                              : 'the leader knows the sessions', 6));
    $('sessions').tBodies[0].replaceChildren.apply($('sessions').tBodies[0], rows);
  }

  function fillHeader(st) {
    var role = $('role');
    role.textContent = st.role + (st.role === 'leader' && !st.ready ? ' (starting)' : '');
    role.className = 'badge ' + (st.role === 'leader' || st.role === 'follower' ? st.role : 'other');
    $('replica').textContent = st.self + ' · term ' + st.term;
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    var n = $('notice');
    if (st.role !== 'leader') {
      n.replaceChildren();
      n.appendChild(document.createTextNode('This replica is not the leader (' + st.role + '). '));
      if (st.leader) {
        n.appendChild(document.createTextNode('The leader is ' + st.leader));
        if (/^https?:\/\//.test(st.leader_page)) {
          n.appendChild(document.createTextNode(': '));
          var a = el('a', 'its status page');
          a.href = st.leader_page;
          a.id = 'leader-link';
          n.appendChild(a);
          n.appendChild(document.createTextNode(' (if it serves HTTP on the port this one does).'));
        } else {
          n.appendChild(document.createTextNode('; its HTTP port shows the live page.'));
        }
      } else {
        n.appendChild(document.createTextNode('No leader is known right now.'));
      }
      n.hidden = false;
    } else {
      n.hidden = true;
    }
  }

  function fillTotals(st) {
    var t = st.totals;
    $('t-servers').textContent = t.servers_alive + ' / ' + t.servers;
    $('t-sessions').textContent = String(st.sessions.count);
    $('t-inodes').textContent = fmtNum(t.inodes);
    $('t-bytes').textContent = fmtBytes(t.bytes);
    var used = Math.max(0, t.capacity - t.free);
    var bar = $('t-usebar');
    var pct = t.capacity > 0 ? Math.min(100, used / t.capacity * 100) : 0;
    bar.style.width = pct.toFixed(1) + '%';
    bar.className = 'fill' + (pct >= 90 ? ' bad' : pct >= 75 ? ' warn' : '');
    $('t-use').textContent = fmtBytes(used) + ' used of ' + fmtBytes(t.capacity) +
      ' (' + pct.toFixed(1) + '%), ' + fmtBytes(t.free) + ' free';
  }

  function show(st) {
    var r = rates(st, rateBase(st));
    if (r) {
      addPoint(graphs.ops, r.t, { reads: r.reads, writes: r.writes, meta: r.meta });
      addPoint(graphs.bytes, r.t, { reads: r.read_bytes, writes: r.write_bytes });
    } else if (prev && st.self !== prev.self) {
      graphs.ops.points = [];
      graphs.bytes.points = [];
    }
    fillHeader(st);
    fillTotals(st);
    fillServers(st, r);
    fillHealth(st);
    fillReplicas(st);
    fillSessions(st, r);
    [graphs.ops, graphs.bytes].forEach(function (g) { drawLegend(g); draw(g); });
    prev = st;
  }

  function poll() {
    fetch('api/status', { cache: 'no-store' })
      .then(function (resp) {
        if (!resp.ok) throw new Error('HTTP ' + resp.status);
        return resp.json();
      })
      .then(function (st) {
        show(st);
        polls++;
        document.body.dataset.polls = String(polls);
        document.body.dataset.state = 'ok';
        $('error').hidden = true;
      })
      .catch(function (e) {
        document.body.dataset.state = 'error';
        var er = $('error');
        er.textContent = 'Cannot read the status: ' + e.message + ' (trying again)';
        er.hidden = false;
      })
      .finally(function () { setTimeout(poll, POLL_MS); });
  }

  [graphs.ops, graphs.bytes].forEach(function (g) { drawLegend(g); draw(g); });
  poll();
})();
