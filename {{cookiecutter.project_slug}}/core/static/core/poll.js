// Keeps a job's page current: polls the element's data-status-url and fills
// every [data-field] inside it from the JSON answer (core/views.py). It
// stops once the job is done or failed, and pauses while the tab is hidden.
// With data-reload-when-finished, the page is loaded again once, as the job
// finishes, for what the JSON does not carry (a notification's recipients).
const LABELS = { pending: "Queued", running: "Running", done: "Done", failed: "Failed" };
const FINISHED = new Set(["done", "failed"]);
const EVERY_MS = 1000;

function show(box, job) {
  for (const field of box.querySelectorAll("[data-field]")) {
    const name = field.dataset.field;
    const value = job[name];
    if (name === "status") {
      field.dataset.status = value;
      field.textContent = LABELS[value] ?? value;
    } else if (field.tagName === "IMG") {
      if (value && field.getAttribute("src") !== value) field.src = value;
      field.hidden = !value;
    } else {
      field.textContent = value ?? "";
      if (name === "error") field.hidden = !value;
    }
  }
}

for (const box of document.querySelectorAll("[data-status-url]")) {
  let finished = FINISHED.has(box.querySelector("[data-field=status]")?.dataset.status);
  let active = false; // a poll is waiting for its time, or for its answer
  let failures = 0; // requests in a row that got no answer
  const again = (ms) => setTimeout(poll, ms);
  const poll = async () => {
    if (document.hidden) {
      active = false; // visibilitychange starts it again
      return;
    }
    let job;
    try {
      const response = await fetch(box.dataset.statusUrl, {
        headers: { Accept: "application/json" },
        signal: AbortSignal.timeout(10 * EVERY_MS),
      });
      if (!response.ok) {
        active = false; // logged out, or gone: the page stays as it is
        return;
      }
      job = await response.json();
      failures = 0;
    } catch {
      // Offline or slow for a moment: try again, for a minute at most.
      failures += 1;
      if (failures < 12) again(5 * EVERY_MS);
      else active = false;
      return;
    }
    finished = FINISHED.has(job.status);
    if (finished && "reloadWhenFinished" in box.dataset) {
      window.location.reload();
      return;
    }
    show(box, job);
    if (finished) active = false;
    else again(EVERY_MS);
  };
  const start = () => {
    if (finished || active || document.hidden) return;
    active = true;
    poll();
  };
  document.addEventListener("visibilitychange", start);
  start();
}
