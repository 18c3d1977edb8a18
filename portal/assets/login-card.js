// The login page's ID-card login: a challenge from the portal, a token from `imza agent`
// (through web-eid.js), the token back to the portal, then the cabinet. The CSRF token, the
// agent's origin and the language come from the section's data- attributes.
(function () {
  "use strict";

  var section = document.getElementById("card-login");
  if (!section || !window.webeid) {
    return;
  }
  var button = document.getElementById("card-login-button");
  var message = document.getElementById("card-message");
  var csrf = section.getAttribute("data-csrf");
  var agent = section.getAttribute("data-agent");
  var english = section.getAttribute("data-lang") === "en";
  var query = english ? "?lang=eng" : "";

  var TEXTS = {
    working: ["İmza agenti gözlənilir…", "Waiting for the imza agent…"],
    ERR_IMZA_AGENT_UNAVAILABLE: [
      "İmza agenti işləmir: kompüterinizdə `imza agent` proqramını başladın.",
      "The imza agent is not running: start `imza agent` on your computer."
    ],
    ERR_IMZA_ORIGIN_REFUSED: [
      "İmza agenti bu sayta xidmət etmir.",
      "The imza agent does not serve this site."
    ],
    ERR_IMZA_PIN_INCORRECT: ["PIN kod səhvdir.", "The PIN is wrong."],
    ERR_IMZA_PIN_LOCKED: [
      "PIN kod bloklanıb; PUK kod ilə açın.",
      "The PIN is locked; unblock it with the PUK."
    ],
    ERR_IMZA_NO_CARD: [
      "Kart tapılmadı: kartı oxuyucuya taxın.",
      "No ID card found: insert it in the reader."
    ],
    ERR_IMZA_NO_CERTIFICATE: [
      "Kartda giriş sertifikatı yoxdur.",
      "The card holds no authentication certificate."
    ],
    ERR_WEBEID_USER_CANCELLED: ["Ləğv edildi.", "Cancelled."],
    ERR_WEBEID_USER_TIMEOUT: ["Vaxt bitdi.", "Timed out."],
    ERR_IMZA_CERTIFICATE_REFUSED: ["Sertifikat qəbul edilmədi", "The certificate was refused"],
    ERR_IMZA_TOKEN_SIGNATURE: ["İmza yoxlanılmadı", "The signature did not verify"],
    ERR_IMZA_NO_CHALLENGE: ["Sorğu artıq istifadə olunub", "The challenge was used already"],
    ERR_IMZA_CHALLENGE_EXPIRED: ["Sorğunun vaxtı bitib", "The challenge has expired"],
    ERR_IMZA_CSRF: ["Səhifəni yeniləyin", "Reload the page"],
    other: ["Giriş alınmadı", "The login failed"]
  };

  function text(key) {
    var pair = TEXTS[key] || TEXTS.other;
    return pair[english ? 1 : 0];
  }

  function describe(error) {
    var code = (error && error.code) || "other";
    if (code === "ERR_IMZA_PIN_INCORRECT" && typeof error.triesLeft === "number") {
      return text(code) + " " + (english
        ? error.triesLeft + (error.triesLeft === 1 ? " try left." : " tries left.")
        : error.triesLeft + " cəhd qalıb.");
    }
    var said = text(TEXTS[code] ? code : "other");
    // The portal's refusals carry the reason (a revoked certificate and why, say).
    if (error && error.fromPortal && error.message) {
      said += ": " + error.message;
    }
    return said;
  }

  function show(what, failed) {
    message.textContent = what;
    message.className = failed ? "error" : "";
  }

  function postToPortal(path, body) {
    var headers = { "X-CSRF-Token": csrf };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    return fetch(path + query, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (!response.ok) {
          var error = new Error(answer.message || "refused");
          error.code = answer.code;
          error.fromPortal = true;
          throw error;
        }
        return answer;
      });
    });
  }

  button.addEventListener("click", function () {
    button.disabled = true;
    show(text("working"), false);
    postToPortal("/portal/login/card/nonce")
      .then(function (challenge) {
        return window.webeid.authenticate(challenge.challengeNonce, { agent: agent });
      })
      .then(function (token) {
        return postToPortal("/portal/login/card", token);
      })
      .then(function (done) {
        window.location.assign(done.location);
      })
      .catch(function (error) {
        show(describe(error), true);
        button.disabled = false;
      });
  });
})();
