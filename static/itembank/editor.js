// The item editor's live preview: after each change (debounced), the editor's form is posted
// to the preview endpoint, which answers with the item as candidates see it (an HTML fragment
// rendered by the server from the one template per interaction). On a new item, choosing
// another type reloads the form with that type's fields.
const form = document.getElementById("item-editor");
const preview = document.getElementById("preview");
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const DELAY_MS = 400;
let timer = null;
let latest = 0;

async function refresh() {
  const ticket = ++latest;
  preview.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(form.dataset.previewUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken },
      body: new FormData(form),
      credentials: "same-origin",
    });
    const html = await response.text();
    if (ticket === latest) preview.innerHTML = html;
  } catch {
    if (ticket === latest) preview.textContent = "The preview could not be updated (offline?).";
  } finally {
    if (ticket === latest) preview.setAttribute("aria-busy", "false");
  }
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(refresh, DELAY_MS);
}

function changeType(select) {
  const url = new URL(form.dataset.newUrl, window.location.href);
  url.searchParams.set("type", select.value);
  window.location.assign(url);
}

if (form && preview) {
  form.addEventListener("input", schedule);
  form.addEventListener("change", (event) => {
    if (event.target.name === "item_type" && event.target.tagName === "SELECT") {
      changeType(event.target);
      return;
    }
    schedule();
  });
}
