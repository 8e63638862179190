/**
 * The dashboard's one script of its own (plain ES5, no build step): it subscribes to the page's
 * server-sent events and swaps in the regions the server re-rendered and appends samples to the
 * charts, so nothing reloads. The state badge says whether the page is live.
 */
export const LIVE_SCRIPT = `
(function () {
  "use strict";
  var state = document.getElementById("live-state");
  function show(text, kind) { if (state) { state.textContent = text; state.className = "badge " + kind; } }
  if (!window.EventSource) { show("no live updates in this browser", "warn"); return; }
  var source = new EventSource("/events?view=" + encodeURIComponent(location.pathname));
  source.addEventListener("open", function () { show("live", "pass"); });
  source.addEventListener("error", function () {
    show(source.readyState === 2 ? "disconnected: reload or log in again" : "reconnecting", "warn");
  });
  source.addEventListener("regions", function (e) {
    JSON.parse(e.data).forEach(function (r) {
      var el = document.getElementById("r-" + r.id);
      if (!el) return;
      // A job the reader opened stays open when its row is redrawn.
      var open = {};
      Array.prototype.forEach.call(el.querySelectorAll("details[data-job]"), function (d) { open[d.getAttribute("data-job")] = d.open; });
      el.innerHTML = r.html;
      Array.prototype.forEach.call(el.querySelectorAll("details[data-job]"), function (d) {
        var id = d.getAttribute("data-job");
        if (id in open) d.open = open[id];
      });
    });
    document.body.setAttribute("data-updated", String(Date.now()));
  });
  source.addEventListener("charts", function (e) {
    if (!window.srlabCharts) return;
    JSON.parse(e.data).forEach(function (p) { window.srlabCharts.append(p.id, p.x, p.values); });
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
`;
