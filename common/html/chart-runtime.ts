/**
 * Runs in the report page (plain ES5-ish JavaScript, no build step): draws every
 * `[data-chart]` container from the JSON spec inside it with uPlot. Each container gets
 * `data-drawn` ("true", "empty" or "error") and `data-points` (non-null values drawn), so a
 * browser test can check that every chart was drawn with data. A live page (the dashboard)
 * adds samples with `srlabCharts.append(id, x, values)`; a chart keeps at most `spec.maxPoints`.
 */
export const CHART_RUNTIME = `
(function () {
  "use strict";
  var PALETTE = ["#0b5cad", "#1a7f37", "#c2410c", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f", "#a16207", "#475569", "#dc2626"];
  var LEVEL = { warning: "#b26a00", critical: "#c62828", target: "#1a7f37" };
  function binary(v, suffix) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], u = 0, a = Math.abs(v);
    while (a >= 1024 && u < units.length - 1) { a /= 1024; u++; }
    return (v < 0 ? "-" : "") + (u === 0 || a >= 100 ? a.toFixed(0) : a.toFixed(1)) + " " + units[u] + suffix;
  }
  var FORMAT = {
    "bytes": function (v) { return binary(v, ""); },
    "bytes/s": function (v) { var m = v / 1e6; return (Math.abs(m) >= 10 ? m.toFixed(0) : Math.abs(m) >= 1 ? m.toFixed(1) : m.toFixed(2)) + " MB/s"; },
    "s": function (v) { return Math.abs(v) >= 120 ? (v / 60).toFixed(1) + " min" : (Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(2)) + " s"; },
    "ms": function (v) { return (Math.abs(v) >= 10 ? v.toFixed(0) : v.toFixed(2)) + " ms"; },
    "%": function (v) { return v.toFixed(0) + "%"; },
    "count": function (v) { return String(Math.round(v * 100) / 100); }
  };
  function clock(sec) {
    var s = Math.round(sec), m = Math.floor(Math.abs(s) / 60), r = Math.abs(s) % 60;
    return (s < 0 ? "-" : "") + m + ":" + (r < 10 ? "0" : "") + r;
  }
  var CHARTS = {};
  function countPoints(series) {
    var points = 0;
    series.forEach(function (values) { values.forEach(function (v) { if (v !== null && v !== undefined) points++; }); });
    return points;
  }
  function draw(el, spec) {
    var plot = el.querySelector(".plot");
    var points = countPoints(spec.series.map(function (s) { return s.values; }));
    el.setAttribute("data-points", String(points));
    CHARTS[spec.id] = { el: el, spec: spec };
    if (points === 0 || spec.x.length === 0) {
      plot.innerHTML = "<div class='empty'>no samples</div>";
      el.setAttribute("data-drawn", "empty");
      return;
    }
    plot.innerHTML = "";
    var fmt = FORMAT[spec.unit] || FORMAT.count;
    var kind = spec.xKind || "elapsed";
    var fg = getComputedStyle(document.body).color;
    var thresholds = spec.thresholds || [];
    var bars = spec.kind === "bars";
    var series = [{ label: kind === "time" ? "time" : kind === "category" ? "bucket" : "elapsed",
      value: function (u, v) { return v == null ? "–" : kind === "category" ? (spec.xLabels || [])[v] || String(v) : kind === "time" ? new Date(v * 1000).toLocaleTimeString() : clock(v); } }];
    spec.series.forEach(function (s, i) {
      var color = s.color || PALETTE[i % PALETTE.length];
      var one = { label: s.label, stroke: color, width: 1.5, value: function (u, v) { return v == null ? "–" : fmt(v); } };
      if (s.dashed) one.dash = [6, 4];
      if (bars) { one.fill = color + "99"; one.paths = uPlot.paths.bars({ size: [0.8, 64] }); one.points = { show: false }; }
      series.push(one);
    });
    var opts = {
      width: Math.max(320, plot.clientWidth || el.clientWidth - 16),
      height: 240,
      series: series,
      scales: {
        x: { time: kind === "time" },
        y: { range: function (u, min, max) {
          thresholds.forEach(function (t) { min = Math.min(min, t.value); max = Math.max(max, t.value); });
          if (min === null || !isFinite(min)) min = 0;
          if (max === null || !isFinite(max)) max = 1;
          var lo = Math.min(0, min), hi = max > lo ? max * 1.08 : lo + 1;
          return [lo, hi];
        } }
      },
      axes: [
        // Clock times are wide: leave room between ticks so labels never overlap.
        { stroke: fg, space: kind === "time" ? 100 : 50, values: function (u, vals) { return vals.map(function (v) { return kind === "category" ? ((spec.xLabels || [])[v] || "") : kind === "time" ? new Date(v * 1000).toLocaleTimeString() : clock(v); }); } },
        { stroke: fg, size: 84, values: function (u, vals) { return vals.map(fmt); } }
      ],
      hooks: { draw: [function (u) {
        var ctx = u.ctx, dpr = window.devicePixelRatio || 1;
        thresholds.forEach(function (t) {
          var y = Math.round(u.valToPos(t.value, "y", true));
          ctx.save();
          ctx.strokeStyle = LEVEL[t.level] || LEVEL.warning;
          ctx.fillStyle = ctx.strokeStyle;
          ctx.lineWidth = 1.5 * dpr;
          ctx.setLineDash([8 * dpr, 5 * dpr]);
          ctx.beginPath();
          ctx.moveTo(u.bbox.left, y);
          ctx.lineTo(u.bbox.left + u.bbox.width, y);
          ctx.stroke();
          ctx.font = (11 * dpr) + "px system-ui, sans-serif";
          ctx.textAlign = "left";
          ctx.textBaseline = "bottom";
          ctx.fillText(t.label, u.bbox.left + 6 * dpr, y - 4 * dpr);
          ctx.restore();
        });
      }] }
    };
    if (kind === "category") {
      opts.scales.x = { time: false, range: function (u, min, max) { return [min - 0.5, max + 0.5]; } };
      opts.axes[0].splits = function () { return spec.x.slice(); };
    }
    var data = [spec.x.slice()].concat(spec.series.map(function (s) { return s.values.slice(); }));
    var u = new uPlot(opts, data, plot);
    window.addEventListener("resize", function () { u.setSize({ width: Math.max(320, plot.clientWidth), height: 240 }); });
    CHARTS[spec.id].plot = u;
    CHARTS[spec.id].data = data;
    el.setAttribute("data-drawn", "true");
  }
  function append(id, x, values) {
    var c = CHARTS[id];
    if (!c) return false;
    var max = c.spec.maxPoints || 3600;
    if (!c.plot) {
      // Drawn empty so far: the first samples draw it.
      c.spec.x.push(x);
      c.spec.series.forEach(function (s, i) { s.values.push(values[i] === undefined ? null : values[i]); });
      draw(c.el, c.spec);
      return true;
    }
    var data = c.data;
    data[0].push(x);
    for (var i = 1; i < data.length; i++) data[i].push(values[i - 1] === undefined ? null : values[i - 1]);
    if (data[0].length > max) for (var j = 0; j < data.length; j++) data[j].splice(0, data[0].length - max);
    c.plot.setData(data);
    c.el.setAttribute("data-points", String(countPoints(data.slice(1))));
    return true;
  }
  window.srlabCharts = { append: append, get: function (id) { return CHARTS[id] && CHARTS[id].data; } };
  var all = document.querySelectorAll("[data-chart]");
  for (var i = 0; i < all.length; i++) {
    try { draw(all[i], JSON.parse(all[i].querySelector("script[type='application/json']").textContent)); } catch (err) {
      all[i].setAttribute("data-drawn", "error");
      console.error("chart " + all[i].getAttribute("data-chart") + ": " + (err && err.message || err));
    }
  }
})();
`;
