// The item editor's media upload (templates/items/editors/hotspot.html): a chosen image is posted
// to the bank (POST /api/bank/media), and its address and pixel size fill the hidden fields the
// editor form sends. Any page that includes an editor partial loads this module.

const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

export function wireMediaUpload(root = document) {
  for (const input of root.querySelectorAll("input[type=file][data-media-upload]")) {
    const box = input.closest("[data-editor]") || root;
    const status = box.querySelector("[data-media-status]");
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      status.textContent = `Uploading ${file.name}…`;
      const body = new FormData();
      body.append("file", file);
      try {
        const response = await fetch("/api/bank/media", {
          method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf() }, body,
        });
        const answer = await response.json().catch(() => ({}));
        if (!response.ok) {
          status.textContent = `Not uploaded: ${answer.message || response.statusText}`;
          return;
        }
        for (const field of box.querySelectorAll("[data-media-field]")) {
          field.value = answer[field.dataset.mediaField] ?? "";
        }
        status.textContent = `Uploaded: ${answer.width} x ${answer.height} pixels.`;
      } catch {
        status.textContent = "Not uploaded: no connection to the server. Try again.";
      }
    });
  }
}

wireMediaUpload();
