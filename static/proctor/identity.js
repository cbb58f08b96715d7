// The identity check: take the selfie and the ID photo with the camera (getUserMedia) and put
// them into the form's file inputs, so one multipart form submits either camera photos or
// chosen files. Without a camera (or without JavaScript) the file inputs work alone.
// While the proctor decides, the page asks for the status every 3 s.

const root = document.getElementById("identity");
const form = document.getElementById("identity-form");
const status = document.getElementById("identity-status");

async function setUpCamera() {
  const cameraBox = document.getElementById("camera");
  const video = document.getElementById("camera-preview");
  const note = document.getElementById("camera-status");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    note.textContent = "No camera is available in this browser: choose photo files instead.";
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: false });
    // offer the buttons once a frame has arrived: before that a photo would be blank
    if (video.readyState < 2) await new Promise((ready) => video.addEventListener("loadeddata", ready, { once: true }));
  } catch (err) {
    note.textContent = "The camera could not be used (" + (err && err.name || "blocked") + "): choose photo files instead.";
    return;
  }
  cameraBox.hidden = false;
  for (const button of form.querySelectorAll("button[data-target]")) {
    button.hidden = false;
    button.addEventListener("click", () => take(video, button.dataset.target, note));
  }
}

function take(video, target, note) {
  if (!video.videoWidth) { note.textContent = "The camera is not ready yet; try again in a moment."; return; }
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  canvas.toBlob((blob) => {
    if (!blob) { note.textContent = "The photo could not be taken; try again or choose a file."; return; }
    const input = document.getElementById(target);
    const transfer = new DataTransfer();
    transfer.items.add(new File([blob], `${target}.jpg`, { type: "image/jpeg" }));
    input.files = transfer.files;
    const preview = document.getElementById(`${target}-preview`);
    preview.src = URL.createObjectURL(blob);
    preview.hidden = false;
    note.textContent = target === "selfie" ? "Photo of you taken." : "Photo of your ID taken.";
  }, "image/jpeg", 0.9);
}

async function poll() {
  try {
    const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.ok) {
      const body = await response.json();
      if (body.state !== root.dataset.state) {
        window.location.reload();
        return;
      }
    }
  } catch { /* offline: try again */ }
  window.setTimeout(poll, 3000);
}

if (form) setUpCamera();
if (root.dataset.state === "identity_pending") window.setTimeout(poll, 3000);
if (status && root.dataset.state === "admitted") document.getElementById("continue-link")?.focus();
