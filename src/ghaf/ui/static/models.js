// Ghaf UI, the model page: a button with data-dialog opens that <dialog> (the break-glass
// reason form); a button with data-close closes its dialog. The form itself posts to the
// API through htmx (ghaf.js shows the outcome and reloads the page on success).
(function () {
  "use strict";
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest("button") : null;
    if (!button) { return; }
    if (button.hasAttribute("data-dialog")) {
      var dialog = document.getElementById(button.getAttribute("data-dialog"));
      if (dialog) { dialog.showModal(); }
    } else if (button.hasAttribute("data-close")) {
      var open = button.closest("dialog");
      if (open) { open.close(); }
    }
  });
  // A refused request closes its dialog, so the reason shown in #flash can be read.
  document.addEventListener("htmx:afterRequest", function (evt) {
    var dialog = evt.detail.elt && evt.detail.elt.closest ? evt.detail.elt.closest("dialog") : null;
    if (dialog && !evt.detail.successful) { dialog.close(); }
  });
})();
