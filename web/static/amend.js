// The amend form's new lines: another row added, and a picked product's list price shown
// as the price's placeholder (an empty price is the price list's). The server validates
// everything again; this only helps the person typing.
(function () {
  "use strict";
  function listPrice(sku) {
    var options = document.querySelectorAll("#amend-products option");
    for (var i = 0; i < options.length; i++) {
      if (options[i].value === sku) return options[i].getAttribute("data-price");
    }
    return null;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector(".added-lines");
    if (!box) return;
    var next = 0;
    box.querySelectorAll(".added-line").forEach(function (row) {
      next = Math.max(next, parseInt(row.getAttribute("data-row"), 10) + 1);
    });
    box.addEventListener("input", function (event) {
      var input = event.target;
      if (input.name && input.name.indexOf("add_sku_") === 0) {
        var price = listPrice(input.value);
        var priceInput = input.closest(".added-line").querySelector("input[name^=add_price_]");
        priceInput.placeholder = price === null ? priceInput.getAttribute("aria-label") : price;
      }
    });
    box.querySelector(".add-amend-line").addEventListener("click", function (event) {
      var rows = box.querySelectorAll(".added-line");
      var row = rows[rows.length - 1].cloneNode(true);
      row.setAttribute("data-row", String(next));
      row.querySelectorAll("input").forEach(function (input) {
        input.name = input.name.replace(/_\d+$/, "_" + next);
        input.value = "";
        input.placeholder = input.getAttribute("aria-label");
        input.removeAttribute("aria-invalid");
      });
      next += 1;
      event.target.parentNode.insertBefore(row, event.target);
      row.querySelector("input[name^=add_sku_]").focus();
    });
  });
})();
