// Reading and restoring the value of each item interaction, on HTML rendered by the server from
// templates/items/interactions/<type>.html (the same markup in the runner, the authoring preview
// and the review pages). Each interaction's root carries data-interaction; `attach` wires it and
// returns { read, write }: read() gives the response in the shape the server stores (null when
// nothing is answered), write(value) shows a stored response.
//
//   const control = attach(container, { onChange: (value) => ..., announce: (text) => ... });

const KINDS = {};

export function attach(container, { onChange = () => {}, announce = () => {} } = {}) {
  const root = container.querySelector("[data-interaction]");
  if (!root) return { read: () => null, write: () => {} };
  const kind = KINDS[root.dataset.interaction];
  const control = kind(root, () => onChange(control.read()), announce);
  return control;
}

const plain = (node) => node.textContent.replace(/\s+/g, " ").trim();

// ------------------------------------------------------------------ radio buttons, checkboxes

KINDS.radios = (root, changed) => {
  const inputs = [...root.querySelectorAll("input[type=radio]")];
  inputs.forEach((x) => x.addEventListener("change", changed));
  return {
    read: () => (inputs.find((x) => x.checked) || { value: null }).value,
    write: (value) => inputs.forEach((x) => { x.checked = x.value === value; }),
  };
};

// "Select TWO.": at the stated number the other boxes are disabled, and the status says so.
KINDS.checkboxes = (root, changed) => {
  const inputs = [...root.querySelectorAll("input[type=checkbox]")];
  const limit = Number(root.dataset.select) || null;
  const status = root.querySelector("[data-select-status]");
  const applyLimit = () => {
    if (!limit) return;
    const n = inputs.filter((x) => x.checked).length;
    for (const x of inputs) x.disabled = x.hasAttribute("data-locked") || (!x.checked && n >= limit);
    status.dataset.state = n >= limit ? "full" : "open";
    status.textContent = n >= limit
      ? `Select ${limit}; you have selected ${n}. To choose another option, first clear one.`
      : `Select ${limit}; you have selected ${n}.`;
  };
  inputs.forEach((x) => {
    if (x.disabled) x.setAttribute("data-locked", "");
    x.addEventListener("change", () => {
      if (limit && inputs.filter((y) => y.checked).length > limit) { x.checked = false; return; }
      applyLimit();
      changed();
    });
  });
  applyLimit();
  return {
    read: () => {
      const picked = inputs.filter((x) => x.checked).map((x) => x.value);
      return picked.length ? picked : null;
    },
    write: (value) => {
      const chosen = new Set(Array.isArray(value) ? value : []);
      inputs.forEach((x) => { x.checked = chosen.has(x.value); });
      applyLimit();
    },
  };
};

// ------------------------------------------------------------------ typed answers

function typed(root, changed) {
  const input = root.querySelector("input");
  input.addEventListener("input", changed);
  return {
    read: () => (input.value.trim() ? input.value : null),
    write: (value) => { input.value = typeof value === "string" ? value : ""; },
  };
}
KINDS.text = typed;
KINDS.number = typed;

// ------------------------------------------------------------------ ordering

KINDS.order = (root, changed, announce) => {
  const list = root.querySelector(".order-list");
  const rows = () => [...list.children];
  const status = root.querySelector("[data-order-status]");
  const say = (text) => { status.textContent = text; announce(text); };
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-move]");
    if (!button || button.disabled) return;
    const row = button.closest("li");
    const all = rows();
    const from = all.indexOf(row);
    const to = from + Number(button.dataset.move);
    const name = plain(row.querySelector(".order-text"));
    if (to < 0 || to >= all.length) {
      say(`${name} is already ${to < 0 ? "first" : "last"}.`);
      return;
    }
    if (to < from) list.insertBefore(row, all[to]);
    else list.insertBefore(row, all[to].nextSibling);
    button.focus();  // the same button, on the moved row: press again to move further
    say(`${name} moved to position ${to + 1} of ${all.length}.`);
    changed();
  });
  return {
    read: () => rows().map((li) => li.dataset.id),
    write: (value) => {
      if (!Array.isArray(value)) return;
      const byId = new Map(rows().map((li) => [li.dataset.id, li]));
      for (const id of value) if (byId.has(id)) list.append(byId.get(id));
    },
  };
};

// ------------------------------------------------------------------ list boxes: matching, gaps

// One-to-one matching: a target chosen for one source is disabled in the other lists (arrow
// keys skip it, a screen reader says it is unavailable), so no answer can use a target twice.
function slots(root, changed) {
  const selects = [...root.querySelectorAll("select[data-slot]")];
  const oneToOne = root.hasAttribute("data-one-to-one");
  const lockUsed = () => {
    if (!oneToOne) return;
    for (const select of selects) {
      const usedElsewhere = new Set(selects.filter((s) => s !== select && s.value).map((s) => s.value));
      for (const option of select.options) option.disabled = Boolean(option.value) && usedElsewhere.has(option.value);
    }
  };
  selects.forEach((select) => select.addEventListener("change", () => { lockUsed(); changed(); }));
  return {
    read: () => {
      const out = {};
      for (const s of selects) if (s.value) out[s.dataset.slot] = s.value;
      return Object.keys(out).length ? out : null;
    },
    write: (value) => {
      const v = value && typeof value === "object" ? value : {};
      selects.forEach((s) => { s.value = v[s.dataset.slot] || ""; });
      lockUsed();
    },
  };
}
KINDS.match = slots;
KINDS.gaps = slots;

// ------------------------------------------------------------------ hotspot

// A point on the image, in the image's own pixels. The pointer marks where it clicks; the
// keyboard moves a cursor with the arrow keys (2% of the image a step, 10% with Shift) and
// marks with Enter or Space.
KINDS.point = (root, changed) => {
  const width = Number(root.dataset.width);
  const height = Number(root.dataset.height);
  const stage = root.querySelector(".hotspot-stage");
  const mark = root.querySelector(".hotspot-mark");
  const cursor = root.querySelector(".hotspot-cursor");
  const status = root.querySelector("[data-point-status]");
  let point = null;      // {x, y} in image pixels
  let at = null;         // the keyboard cursor, as fractions
  const pct = (f) => `${Math.round(f * 100)}%`;
  const place = (node, fx, fy) => {
    node.hidden = false;
    node.style.left = `${fx * 100}%`;
    node.style.top = `${fy * 100}%`;
  };
  const showMark = () => {
    if (!point) { mark.hidden = true; status.textContent = "No place marked yet."; return; }
    place(mark, point.x / width, point.y / height);
    status.textContent = `Marked at ${pct(point.x / width)} across and ${pct(point.y / height)} down the image.`;
  };
  const setPoint = (fx, fy) => {
    if (stage.tabIndex < 0) return;  // read-only
    const clamp = (f) => Math.min(1, Math.max(0, f));
    point = { x: Math.round(clamp(fx) * width * 100) / 100, y: Math.round(clamp(fy) * height * 100) / 100 };
    showMark();
    changed();
  };
  stage.addEventListener("click", (event) => {
    const box = stage.getBoundingClientRect();
    setPoint((event.clientX - box.left) / box.width, (event.clientY - box.top) / box.height);
  });
  stage.addEventListener("keydown", (event) => {
    const step = event.shiftKey ? 0.1 : 0.02;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (!at) at = point ? [point.x / width, point.y / height] : [0.5, 0.5];
    if (moves[event.key]) {
      event.preventDefault();
      at = [Math.min(1, Math.max(0, at[0] + moves[event.key][0])), Math.min(1, Math.max(0, at[1] + moves[event.key][1]))];
      place(cursor, at[0], at[1]);
      status.textContent = `Marker at ${pct(at[0])} across and ${pct(at[1])} down. Press Enter to mark this place.`;
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      setPoint(at[0], at[1]);
    }
  });
  stage.addEventListener("focus", () => {
    at = point ? [point.x / width, point.y / height] : [0.5, 0.5];
    place(cursor, at[0], at[1]);
  });
  stage.addEventListener("blur", () => { cursor.hidden = true; });
  return {
    read: () => point,
    write: (value) => {
      point = value && typeof value.x === "number" && typeof value.y === "number" ? { x: value.x, y: value.y } : null;
      showMark();
    },
  };
};
