// The copy buttons, and nothing else: a button with data-copy="ID" copies the text of the
// element with that id. Without the Clipboard API (an older browser, or a page served over
// plain http from another host) it selects the text instead, for Ctrl+C.
"use strict";

function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

function say(button, message) {
  const status = button.parentElement.querySelector(".copy-status");
  if (status) {
    status.textContent = message;
    setTimeout(() => { status.textContent = ""; }, 4000);
  }
}

document.querySelectorAll("button[data-copy]").forEach((button) => {
  const target = document.getElementById(button.dataset.copy);
  if (!target) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", () => {
    const fallback = () => {
      selectText(target);
      say(button, "Selected: press Ctrl+C to copy");
    };
    if (!navigator.clipboard || !window.isSecureContext) {
      fallback();
      return;
    }
    navigator.clipboard.writeText(target.textContent).then(() => say(button, "Copied"), fallback);
  });
});
