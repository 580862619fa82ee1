// Fetches the visit counter kept in a signed session cookie.
fetch("/api/visits", { credentials: "same-origin" })
  .then((r) => r.json())
  .then((data) => { document.getElementById("visits").textContent = data.visits; });
