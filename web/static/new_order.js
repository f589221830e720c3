// The new-order form: lines added and removed, a product's list price filled in when it is
// picked, each line's amount and the order's total computed as one types. The server
// validates everything again; this only helps the person typing.
(function () {
  "use strict";
  function number(text) {
    var value = parseFloat(String(text || "").replace(/,/g, ""));
    return isNaN(value) ? 0 : value;
  }
  function money(value) {
    return value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  function listPrice(sku) {
    var options = document.querySelectorAll("#products option");
    for (var i = 0; i < options.length; i++) {
      if (options[i].value === sku) return options[i].getAttribute("data-price");
    }
    return null;
  }
  function recompute(form) {
    var total = 0;
    form.querySelectorAll("tr.entry-line").forEach(function (row) {
      var qty = number(row.querySelector("input[name^=qty_]").value);
      var priceInput = row.querySelector("input[name^=price_]");
      var price = priceInput.value ? number(priceInput.value) : number(priceInput.placeholder);
      var amount = qty * price;
      total += amount;
      row.querySelector("td.amount").textContent = money(amount);
    });
    form.querySelector("[data-testid=entry-total]").textContent = money(total);
  }
  function fillPrice(row) {
    var sku = row.querySelector("input[name^=sku_]").value;
    var price = listPrice(sku);
    var priceInput = row.querySelector("input[name^=price_]");
    priceInput.placeholder = price === null ? "" : price;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("new-order");
    if (!form) return;
    var body = form.querySelector("tbody");
    var next = 0;
    body.querySelectorAll("tr.entry-line").forEach(function (row) {
      next = Math.max(next, parseInt(row.getAttribute("data-row"), 10) + 1);
      fillPrice(row);
    });
    form.addEventListener("input", function (event) {
      var row = event.target.closest("tr.entry-line");
      if (row && event.target.name.indexOf("sku_") === 0) fillPrice(row);
      recompute(form);
    });
    form.addEventListener("click", function (event) {
      var target = event.target;
      if (target.id === "add-line") {
        var template = body.querySelector("tr.entry-line");
        var row = template.cloneNode(true);
        row.setAttribute("data-row", String(next));
        row.querySelectorAll("input").forEach(function (input) {
          input.name = input.name.replace(/_\d+$/, "_" + next);
          input.value = input.name.indexOf("qty_") === 0 ? "1" : "";
          input.placeholder = "";
          input.removeAttribute("aria-invalid");
        });
        row.querySelectorAll("small.error").forEach(function (el) { el.remove(); });
        next += 1;
        body.appendChild(row);
        row.querySelector("input[name^=sku_]").focus();
        recompute(form);
      } else if (target.classList.contains("remove-line")) {
        if (body.querySelectorAll("tr.entry-line").length > 1) {
          target.closest("tr.entry-line").remove();
          recompute(form);
        }
      }
    });
    recompute(form);
  });
})();
