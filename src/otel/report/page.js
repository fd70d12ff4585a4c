// The run overview: every journey as a lane over time, drawn from the data in #journey-data,
// sortable, and virtualised (only the lanes in view are drawn) in inputs marked data-virtual.
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  var data = JSON.parse(document.getElementById('journey-data').textContent);
  var AXIS_H = 24;
  // Rows drawn above and below the visible ones in a virtualised overview.
  var MARGIN_ROWS = 30;

  function svg(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  // A duration in seconds in the unit that suits it, as `journey timeline` prints it.
  function dur(s) {
    if (s === null || s === undefined) return '—';
    var a = Math.abs(s);
    if (a < 1e-3) return (s * 1e6).toFixed(0) + ' µs';
    if (a < 1) return (s * 1e3).toFixed(2) + ' ms';
    return s.toFixed(3) + ' s';
  }

  function ticks(lo, hi, target) {
    if (!(hi > lo)) return [lo];
    var raw = (hi - lo) / target, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; }).filter(function (s) { return s >= raw; })[0];
    var out = [];
    for (var k = Math.ceil(lo / step); k * step <= hi + 1e-12; k++) out.push(k * step);
    return out;
  }

  function tickLabel(v, hi) {
    var d = hi < 2e-3 ? [1e-6, 'µs'] : hi < 2 ? [1e-3, 'ms'] : [1, 's'];
    return String(Math.round((v / d[0]) * 1000) / 1000) + ' ' + d[1];
  }

  // Where every row of every run is, by its index in its run (for links and details).
  var byRun = data.runs.map(function (run, r) {
    var m = {};
    run.inputs.forEach(function (input, i) {
      input.rows.forEach(function (row) { m[row.k] = { row: row, input: input, run: r, inputIndex: i }; });
    });
    return m;
  });

  var selected = null;

  function showDetail(run, k) {
    var hit = byRun[run] && byRun[run][k];
    var box = document.getElementById('detail');
    if (!hit || !box) return;
    var row = hit.row;
    box.hidden = false;
    box.textContent = '';
    var h = document.createElement('h3');
    h.textContent = data.runs[run].tag + ' · request ' + row.id + ' · ' + ({ c: 'conforming', i: 'incomplete', v: 'violating' })[row.v] +
      (row.r.length ? ' (' + row.r.join(', ') + ')' : '');
    box.appendChild(h);
    var facts = document.createElement('p');
    facts.textContent = hit.input.name + ' · arrival +' + dur(row.a) + ' · queue ' + dur(row.q) + ' · first token ' + dur(row.f) +
      ' · end-to-end ' + dur(row.e) + ' · ' + row.p + ' preemption' + (row.p === 1 ? '' : 's');
    box.appendChild(facts);
    if (row.tl) {
      var a = document.createElement('a');
      a.href = '#t-' + run + '-' + k;
      a.textContent = 'the text timeline (as journey timeline prints it)';
      box.appendChild(a);
    }
    row.lanes.forEach(function (lane) {
      var t = document.createElement('table');
      t.className = 'events';
      t.innerHTML = '<thead><tr><th>' + lane.layer + ' #</th><th>step</th><th>+t</th><th>Δt</th><th>event</th><th>state after</th></tr></thead>';
      var body = document.createElement('tbody');
      var t0 = lane.ev.length ? lane.ev[0][0] : 0, prev = null;
      lane.ev.forEach(function (e, i) {
        var tr = document.createElement('tr');
        [i, e[3], '+' + dur(e[0] - t0), prev === null ? '—' : '+' + dur(e[0] - prev), data.labels[e[1]].name, data.states[e[2]].name]
          .forEach(function (v) { var td = document.createElement('td'); td.textContent = String(v); tr.appendChild(td); });
        prev = e[0];
        body.appendChild(tr);
      });
      t.appendChild(body);
      box.appendChild(t);
    });
    if (selected) selected.classList.remove('selected');
    selected = document.querySelector('.lanes[data-run="' + run + '"] .lane[data-k="' + k + '"]');
    if (selected) selected.classList.add('selected');
    box.scrollIntoView({ block: 'nearest' });
  }

  var KEYS = { a: 'a', q: 'q', p: 'p', e: 'e' };

  function setup(box) {
    var run = +box.getAttribute('data-run'), inputIndex = +box.getAttribute('data-input');
    var input = data.runs[run].inputs[inputIndex];
    var virtual = box.getAttribute('data-virtual') === 'true';
    var controls = box.parentNode.querySelector('.controls');
    var all = input.rows.slice();
    var n = all.length;
    var rowH = n <= 40 ? 16 : n <= 120 ? 8 : n <= 400 ? 5 : 4;
    var layers = all.reduce(function (m, r) { return Math.max(m, r.lanes.length); }, 1);
    var rowTotal = rowH * layers + (rowH >= 8 ? 2 : 1);
    var labelW = rowH >= 12 ? 130 : 8;
    var width = Math.max(600, box.clientWidth || 1160);
    var span = input.duration > 0 ? input.duration : 1;
    var plotW = width - labelW - 14;
    function x(t) { return labelW + (t / span) * plotW; }

    // The time axis, above the lanes so it stays in view while they scroll.
    var axis = svg('svg', { width: width, height: AXIS_H, class: 'axis-g' });
    ticks(0, span, 10).forEach(function (t) {
      svg('line', { x1: x(t), x2: x(t), y1: AXIS_H - 6, y2: AXIS_H }, axis);
      var label = svg('text', { x: x(t), y: AXIS_H - 9, 'text-anchor': 'middle' }, axis);
      label.textContent = tickLabel(t, span);
    });
    box.parentNode.insertBefore(axis, box);

    var root = svg('svg', { width: width, height: 10 }, box);
    var grid = svg('g', {}, root);
    var lanesG = svg('g', {}, root);
    var rows = all;

    function drawRow(row, y) {
      var g = svg('g', { class: 'lane' + (row.v === 'v' ? ' violating' : ''), 'data-k': row.k, 'data-request': row.id, transform: 'translate(0,' + y + ')' });
      svg('rect', { class: 'bg', x: 0, y: 0, width: width, height: rowTotal }, g);
      var title = svg('title', {}, g);
      title.textContent = row.id + ' — ' + ({ c: 'conforming', i: 'incomplete', v: 'violating ' + row.r.join(', ') })[row.v] +
        '\narrival +' + dur(row.a) + ', queue ' + dur(row.q) + ', first token ' + dur(row.f) + ', end-to-end ' + dur(row.e) +
        ', ' + row.p + ' preemptions';
      if (labelW > 10) {
        var label = svg('text', { x: 4, y: rowH - 4 }, g);
        label.textContent = row.id;
      }
      if (row.v === 'v') svg('rect', { class: 'm-violating', x: 0, y: 0, width: 5, height: rowH * layers }, g);
      row.lanes.forEach(function (lane, li) {
        var top = li * rowH, ev = lane.ev;
        for (var i = 0; i + 1 < ev.length; i++) {
          var seg = data.states[ev[i][2]].seg;
          if (seg === 'done') continue;
          var x0 = x(ev[i][0]), x1 = x(ev[i + 1][0]);
          svg('rect', { class: 'seg ' + seg, x: x0, y: top, width: Math.max(0.6, x1 - x0), height: rowH }, g);
        }
        ev.forEach(function (e) {
          var mark = data.labels[e[1]].mark, mx = x(e[0]);
          if (mark === 'preemption') {
            svg('path', { class: 'm-preemption', d: 'M' + (mx - 2.5) + ',' + top + 'h5l-2.5,' + Math.max(3, rowH * 0.7) + 'z' }, g);
          } else if (mark === 'first-token') {
            var r = Math.max(1.8, rowH * 0.35), cy = top + rowH / 2;
            svg('path', { class: 'm-first-token', d: 'M' + mx + ',' + (cy - r) + 'l' + r + ',' + r + 'l' + -r + ',' + r + 'l' + -r + ',' + -r + 'z' }, g);
          } else if (mark === 'finish') {
            svg('rect', { class: 'm-finish', x: mx - 0.75, y: top, width: 1.5, height: rowH }, g);
          }
        });
      });
      lanesG.appendChild(g);
    }

    var drawn = [-1, -1];
    function draw(force) {
      var first = 0, last = rows.length;
      if (virtual) {
        first = Math.max(0, Math.floor(box.scrollTop / rowTotal) - MARGIN_ROWS);
        last = Math.min(rows.length, Math.ceil((box.scrollTop + (box.clientHeight || 640)) / rowTotal) + MARGIN_ROWS);
      }
      if (!force && first === drawn[0] && last === drawn[1]) return;
      drawn = [first, last];
      while (lanesG.firstChild) lanesG.removeChild(lanesG.firstChild);
      for (var i = first; i < last; i++) drawRow(rows[i], i * rowTotal);
      box.setAttribute('data-rendered', String(last - first));
      box.setAttribute('data-shown', String(rows.length));
    }

    function relayout() {
      root.setAttribute('height', String(Math.max(rowTotal, rows.length * rowTotal)));
      while (grid.firstChild) grid.removeChild(grid.firstChild);
      ticks(0, span, 10).forEach(function (t) {
        svg('line', { x1: x(t), x2: x(t), y1: 0, y2: rows.length * rowTotal, stroke: '#eef0f3' }, grid);
      });
      if (!virtual && rows.length * rowTotal > 640) box.classList.add('tall');
      draw(true);
    }

    function sort() {
      var key = KEYS[controls.querySelector('.sort').value] || 'a';
      var desc = controls.querySelector('.desc').checked;
      var only = controls.querySelector('.only-violating').checked;
      rows = all.filter(function (r) { return !only || r.v === 'v'; });
      rows.sort(function (p, q) {
        var a = p[key], b = q[key];
        // Journeys without the value (no FINISHED, say) go last either way.
        if (a === null || a === undefined) return b === null || b === undefined ? p.k - q.k : 1;
        if (b === null || b === undefined) return -1;
        return (desc ? b - a : a - b) || p.k - q.k;
      });
      box.setAttribute('data-sort', key + (desc ? '-desc' : ''));
      relayout();
    }

    controls.addEventListener('change', sort);
    if (virtual) {
      var pending = false;
      box.addEventListener('scroll', function () {
        if (pending) return;
        pending = true;
        window.requestAnimationFrame(function () { pending = false; draw(false); });
      });
    }
    root.addEventListener('click', function (ev) {
      var g = ev.target.closest ? ev.target.closest('.lane') : null;
      if (g) showDetail(run, +g.getAttribute('data-k'));
    });
    sort();
  }

  document.querySelectorAll('.lanes').forEach(setup);

  // Links to a journey: its text timeline when the page has it, the event table otherwise.
  document.addEventListener('click', function (ev) {
    var a = ev.target.closest ? ev.target.closest('a.journey-link') : null;
    if (!a) return;
    var run = +a.getAttribute('data-run'), k = +a.getAttribute('data-row');
    if (!document.getElementById('t-' + run + '-' + k)) {
      ev.preventDefault();
      showDetail(run, k);
    }
  });

  document.body.setAttribute('data-ready', 'true');
})();
