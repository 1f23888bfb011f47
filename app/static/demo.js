// The demo host page: each answer's thumbs-down opens the widget with the turns it is about
// (the JavaScript API), and a delivered report is acknowledged in the chat.
(() => {
  "use strict";
  const status = () => document.getElementById("demo-status");
  const text = (turn) => turn.querySelector(".text").textContent.trim();

  document.addEventListener("click", (event) => {
    const up = event.target.closest(".thumb-up");
    if (up) {
      up.setAttribute("aria-pressed", String(up.getAttribute("aria-pressed") !== "true"));
      return;
    }
    const down = event.target.closest(".thumb-down");
    if (!down) return;
    if (!window.Flagdesk) {
      status().textContent = "The report widget is not loaded on this page.";
      return;
    }
    const answer = down.closest(".turn");
    const question = answer.previousElementSibling;
    const conversation = [];
    if (question && question.classList.contains("turn-user")) {
      conversation.push({ role: "user", content: text(question) });
    }
    conversation.push({ role: "assistant", content: text(answer) });
    window.Flagdesk.open({
      conversation,
      model: answer.dataset.model,
      responseId: answer.dataset.responseId,
      endUserId: "demo-user-1",
      metadata: { source: "demo", chat_id: "demo-chat-42" },
    });
  });

  // Async scripts run before the load event: by now the widget is there (if it loaded).
  window.addEventListener("load", () => {
    if (!window.Flagdesk) return;
    window.Flagdesk.on("submitted", (receipt) => {
      status().textContent = `Thanks: report ${receipt.id} reached the team.`;
    });
    window.Flagdesk.on("queued", () => {
      status().textContent = "Your report is saved and will be sent when the connection is back.";
    });
  });
})();
