// imza's Web eID library for portal pages: the functions of Web eID's JavaScript API
// (authenticate, getSigningCertificate, sign) answered by `imza agent`, the signing agent on
// the citizen's computer, over HTTP on the loopback interface. The agent answers only origins
// on its allow-list and takes the origin from the browser's Origin header, which page script
// cannot set; the PIN is asked by the agent in its own dialog, never by the page.
//
// Each function returns a Promise. A failure is an Error with `code` (ERR_IMZA_AGENT_UNAVAILABLE
// when no agent answers, else the agent's code: ERR_IMZA_PIN_INCORRECT with `triesLeft`,
// ERR_IMZA_PIN_LOCKED, ERR_IMZA_NO_CARD, ERR_WEBEID_USER_CANCELLED, ...).
(function (global) {
  "use strict";

  function failure(code, message, extra) {
    var error = new Error(message || code);
    error.code = code;
    if (extra && typeof extra.triesLeft === "number") {
      error.triesLeft = extra.triesLeft;
    }
    return error;
  }

  function call(path, body, options) {
    // The agent's origin, from the portal's page (its CSP's connect-src names it too).
    var agent = options && options.agent;
    if (!agent) {
      return Promise.reject(failure("ERR_IMZA_AGENT_UNAVAILABLE", "no agent address given"));
    }
    var timeout = (options && options.userInteractionTimeout) || 180000;
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, timeout);
    return fetch(agent + path, {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      cache: "no-store",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: controller.signal
    }).then(function (response) {
      clearTimeout(timer);
      if (response.status === 403) {
        throw failure("ERR_IMZA_ORIGIN_REFUSED", "the agent does not serve this site");
      }
      return response.json().then(function (answer) {
        if (!response.ok) {
          throw failure(answer.code || "ERR_WEBEID_NATIVE_FATAL", answer.message, answer);
        }
        return answer;
      });
    }, function (error) {
      clearTimeout(timer);
      if (error && error.name === "AbortError") {
        throw failure("ERR_WEBEID_USER_TIMEOUT", "no answer from the agent in time");
      }
      throw failure("ERR_IMZA_AGENT_UNAVAILABLE", "the imza agent is not running");
    });
  }

  global.webeid = {
    // A Web eID authentication token over this page's origin and `challengeNonce`.
    authenticate: function (challengeNonce, options) {
      return call("/v1/authenticate", { challengeNonce: challengeNonce }, options);
    },
    // The card's signing certificate and the algorithms it signs with.
    getSigningCertificate: function (options) {
      return call("/v1/signing-certificate", {}, options);
    },
    // A signature of `hash` (base64) made with `certificate` (base64 DER, from
    // getSigningCertificate); ECDSA signatures come as raw r||s.
    sign: function (certificate, hash, hashFunction, options) {
      return call("/v1/sign", {
        certificate: certificate,
        hash: hash,
        hashFunction: hashFunction
      }, options);
    }
  };
})(window);
