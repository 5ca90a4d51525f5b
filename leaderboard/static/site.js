/* triptych leaderboard: sortable tables, plot rendering (vendored vega-embed) and provenance links.
   No network access: plot data are inlined as JSON in the page. */
(function () {
  "use strict";

  function cellKey(row, index) {
    var cell = row.cells[index];
    var raw = cell.getAttribute("data-value");
    return raw === null ? cell.textContent.trim() : raw;
  }

  function compareKeys(a, b, numeric) {
    if (a === "" && b === "") return 0;
    if (a === "") return 1;   /* missing values always last */
    if (b === "") return -1;
    if (numeric) {
      var x = Number(a), y = Number(b);
      if (x === y) return 0;
      return x < y ? -1 : 1;
    }
    return a.localeCompare(b, undefined, {numeric: true, sensitivity: "base"});
  }

  function sortTable(table, index, th) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var headers = table.tHead.rows[0].cells;
    for (var i = 0; i < headers.length; i++) headers[i].removeAttribute("aria-sort");
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var numeric = th.getAttribute("data-type") === "number";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (ra, rb) {
      var ka = cellKey(ra, index), kb = cellKey(rb, index);
      if (ka === "" || kb === "") return compareKeys(ka, kb, numeric);  /* empty last either way */
      var order = compareKeys(ka, kb, numeric);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function makeSortable(table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, index) {
      th.tabIndex = 0;
      th.classList.add("sort-header");
      th.addEventListener("click", function () { sortTable(table, index, th); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortTable(table, index, th); }
      });
    });
  }

  function renderPlots() {
    var nodes = document.querySelectorAll("[data-spec]");
    if (!nodes.length) return;
    if (typeof window.vegaEmbed !== "function") {
      console.error("triptych: vega-embed is missing from static/vendor");
      return;
    }
    Array.prototype.forEach.call(nodes, function (node) {
      var spec = JSON.parse(document.getElementById(node.getAttribute("data-spec")).textContent);
      window.vegaEmbed(node, spec, {
        renderer: "svg",
        actions: {export: true, source: false, compiled: false, editor: false}
      }).then(function () {
        node.setAttribute("data-rendered", "true");
      }).catch(function (error) {
        node.setAttribute("data-rendered", "error");
        node.textContent = "plot failed: " + error;
        console.error("triptych plot " + node.id + ": " + error);
      });
    });
  }

  function openFromHash() {
    var id = window.location.hash.slice(1);
    var target = id && document.getElementById(id);
    if (target && target.tagName === "DETAILS") {
      target.open = true;
      target.scrollIntoView();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
    renderPlots();
    openFromHash();
    window.addEventListener("hashchange", openFromHash);
  });
})();
