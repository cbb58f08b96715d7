// Sortable tables for the workspace's reports: every table marked data-sortable gets a button in
// each column heading (keyboard-operable: Tab to it, Enter or Space to sort); aria-sort says the
// current order. Numbers sort as numbers, "n/a" and blanks last.
const value = (cell) => {
  const text = (cell?.textContent ?? "").trim();
  const n = Number.parseFloat(text.replace("%", ""));
  return Number.isFinite(n) && /^-?[\d.]+%?$/.test(text) ? n : text.toLowerCase();
};

const compare = (a, b) => {
  const blank = (v) => v === "" || v === "n/a";
  if (blank(a) || blank(b)) return blank(a) - blank(b);
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
};

function sortBy(table, index, button) {
  const th = button.closest("th");
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = [...body.rows];
  rows.sort((r1, r2) => {
    const order = compare(value(r1.cells[index]), value(r2.cells[index]));
    return ascending ? order : -order;
  });
  body.append(...rows);
  const status = table.parentElement.querySelector(".sort-status");
  if (status) status.textContent = `Sorted by ${button.textContent}, ${ascending ? "ascending" : "descending"}.`;
}

for (const table of document.querySelectorAll("table[data-sortable]")) {
  if (!table.tHead || !table.tBodies.length) continue;
  const status = document.createElement("p");
  status.className = "sort-status visually-hidden";
  status.setAttribute("role", "status");
  table.after(status);
  [...table.tHead.rows[0].cells].forEach((th, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sort-button";
    button.textContent = th.textContent;
    th.textContent = "";
    th.append(button);
    button.addEventListener("click", () => sortBy(table, index, button));
  });
}
