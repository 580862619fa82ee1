// The chat page: one WebSocket, messages appended as they arrive.
const list = document.getElementById("messages");
const form = document.getElementById("send");
const input = document.getElementById("text");
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const socket = new WebSocket(scheme + location.host + "/chat/ws");

socket.addEventListener("open", () => { document.body.dataset.connected = "yes"; });
socket.addEventListener("message", (event) => {
  const item = document.createElement("li");
  item.textContent = event.data;
  list.appendChild(item);
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (input.value) { socket.send(input.value); input.value = ""; }
});
