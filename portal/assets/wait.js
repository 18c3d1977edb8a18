// The phone and QR logins' waiting page (served as /portal/assets/wait.js: the portal's CSP
// allows no inline script). Every second it asks the portal how the login stands, with the
// session's CSRF token; on a QR page it also reloads the QR image, which the portal makes anew
// each second. Done: go to the cabinet. Failed: say why.
(function () {
  "use strict";
  var wait = document.getElementById("wait");
  if (!wait) { return; }
  var csrf = wait.getAttribute("data-csrf");
  var status = document.getElementById("status");
  var qr = document.getElementById("qr");
  var qrBase = qr ? qr.getAttribute("src") : null;
  var finished = false;
  var ticks = 0;

  function say(text) { if (status) { status.textContent = text; } }

  function poll() {
    if (finished) { return; }
    var body = new URLSearchParams();
    body.set("csrf", csrf);
    fetch("/portal/login/wait", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    }).then(function (response) {
      return response.json();
    }).then(function (answer) {
      if (answer.state === "done") {
        finished = true;
        // The cabinet in the page's language.
        var english = document.documentElement.lang === "en";
        window.location.assign(answer.location + (english ? "?lang=eng" : ""));
      } else if (answer.state === "failed") {
        finished = true;
        if (qr) { qr.remove(); }
        wait.setAttribute("data-state", "failed");
        say(answer.message);
      }
    }).catch(function () { /* the next tick tries again */ });
  }

  window.setInterval(function () {
    if (finished) { return; }
    ticks += 1;
    if (qr && qrBase) {
      qr.setAttribute("src", qrBase + (qrBase.indexOf("?") < 0 ? "?" : "&") + "t=" + ticks);
    }
    poll();
  }, 1000);
  poll();
})();
