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

// Live updates: the page's [data-live] parts refresh (htmx.ajax of data-live-url) when the
// server's events (/app/live, server-sent) name an order they show: the inbox when an order it
// lists changed or one now awaits approval, an order page when its order changed. A part
// being typed in is left alone: it refreshes when the focus leaves it, or (text typed in it)
// shows its [data-live-stale] notice instead.
(function () {
  "use strict";
  var loading = {}, again = {};
  function concerns(el, change) {
    if (change.order_no === null) return true; // many changed: refresh everything
    if (el.dataset.live === "order") return el.dataset.order === change.order_no;
    if (el.dataset.live === "inbox") {
      return change.status === "PENDING_APPROVAL" ||
        el.querySelector('[data-order="' + CSS.escape(change.order_no) + '"]') !== null;
    }
    return true;
  }
  function typedIn(el) {
    return Array.prototype.some.call(
      el.querySelectorAll("textarea, input:not([type=hidden]):not([type=checkbox])"),
      function (field) { return field.value !== field.defaultValue; });
  }
  function refresh(id) {
    var el = document.getElementById(id);
    if (!el) return;
    if (typedIn(el)) {
      var stale = el.querySelector("[data-live-stale]");
      if (stale) stale.hidden = false;
      return;
    }
    if (loading[id] || el.contains(document.activeElement)) {
      again[id] = true; // after this load, or when the focus leaves
      return;
    }
    loading[id] = true;
    var finish = function () {
      loading[id] = false;
      if (again[id]) { again[id] = false; refresh(id); }
    };
    htmx.ajax("GET", el.dataset.liveUrl, {
      target: "#" + id, swap: "outerHTML", select: el.dataset.liveSelect || null
    }).then(finish, finish);
  }
  function changed(change) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      if (el.id && concerns(el, change)) refresh(el.id);
    });
  }
  // A refresh already on its way when typing began must not wipe what was typed: its answer
  // is dropped at the swap, as it would have been refused at the start.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var el = evt.detail.target;
    if (!el || !el.dataset || !el.dataset.live) return;
    if (typedIn(el)) {
      evt.detail.shouldSwap = false;
      var stale = el.querySelector("[data-live-stale]");
      if (stale) stale.hidden = false;
    } else if (el.contains(document.activeElement)) {
      evt.detail.shouldSwap = false;
      again[el.id] = true;
    }
  });
  document.addEventListener("focusout", function () {
    setTimeout(function () {
      Object.keys(again).forEach(function (id) {
        if (again[id] && !loading[id]) { again[id] = false; refresh(id); }
      });
    }, 0);
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (!document.querySelector("[data-live]") || !window.EventSource) return;
    var source = new EventSource("/app/live"), opened = false;
    source.addEventListener("order", function (e) { changed(JSON.parse(e.data)); });
    source.addEventListener("open", function () {
      if (opened) changed({ order_no: null, status: null }); // back after a gap: catch up
      opened = true;
      document.body.dataset.live = "on";
    });
  });
})();
