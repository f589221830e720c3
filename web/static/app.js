// Live countdowns: every <time data-due="ISO"> shows how long until (or since) it is due,
// updated each second. Labels come from the page (its language): body data-label-*.
(function () {
  "use strict";
  function span(seconds) {
    var u = (document.body.dataset.units || "d h m s").split(" ");
    var d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
    var m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
    var parts = [];
    if (d) parts.push(d + u[0]);
    if (d || h) parts.push(h + u[1]);
    parts.push((m < 10 && (d || h) ? "0" : "") + m + u[2]);
    if (!d) parts.push((s < 10 ? "0" : "") + s + u[3]);
    return parts.join(" ");
  }
  function tick() {
    var body = document.body, now = Date.now();
    document.querySelectorAll("time[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) return;
      var left = Math.round((due - now) / 1000);
      el.textContent = left >= 0
        ? body.dataset.labelIn + " " + span(left)
        : body.dataset.labelOverdue + " " + span(-left);
      el.classList.toggle("late", left < 0);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", tick);
})();
