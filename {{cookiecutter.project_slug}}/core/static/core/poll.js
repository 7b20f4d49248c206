// Polls the element's data-status-url until the job is done or failed,
// and fills every [data-field] inside it from the JSON answer.
for (const box of document.querySelectorAll("[data-status-url]")) {
  const poll = async () => {
    const response = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const job = await response.json();
    for (const field of box.querySelectorAll("[data-field]")) {
      const value = job[field.dataset.field];
      if (field.tagName === "IMG") {
        if (value) { field.src = value; field.hidden = false; }
      } else {
        field.textContent = value ?? "";
      }
    }
    if (job.status !== "done" && job.status !== "failed") setTimeout(poll, 1000);
  };
  poll();
}
