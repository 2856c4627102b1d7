// Sends a response file with a progress bar: announce it, then PUT its bytes as the raw body
// to this session's upload route (the same intake as the API). Without this script the form
// posts the file itself; with it, the form does the same in two steps the page can follow.
(function () {
  "use strict";
  var form = document.getElementById("respond-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  var progress = document.getElementById("respond-progress");
  var status = document.getElementById("respond-status");
  var token = form.querySelector("input[name=csrf_token]").value;

  function fail(message) {
    status.textContent = message;
    form.querySelector("button[type=submit]").disabled = false;
  }

  form.addEventListener("submit", function (event) {
    var file = form.querySelector("input[type=file]").files[0];
    if (!file) { return; }  // the server explains what is missing
    event.preventDefault();
    form.querySelector("button[type=submit]").disabled = true;
    var fields = new URLSearchParams();
    fields.append("csrf_token", token);
    fields.append("description", form.elements.description.value);
    fields.append("exhibit", form.elements.exhibit.value);
    if (file.type) { fields.append("media_type", file.type); }
    status.textContent = "Announcing the file…";
    fetch(form.dataset.announce, {
      method: "POST", body: fields, credentials: "same-origin",
      headers: { "X-CSRFToken": token, "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 422) { form.submit(); return null; }  // the server shows what to fix
      if (!response.ok) { throw new Error("the announcement was refused (" + response.status + ")"); }
      return response.json();
    }).then(function (announced) {
      if (!announced) { return; }
      var request = new XMLHttpRequest();
      request.open("PUT", announced.upload);
      request.setRequestHeader("X-CSRFToken", token);
      request.setRequestHeader("Content-Type", "application/octet-stream");
      progress.hidden = false;
      request.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          progress.value = Math.floor(100 * e.loaded / e.total);
          status.textContent = "Sent " + progress.value + "%";
        }
      });
      request.addEventListener("load", function () {
        if (request.status === 201 || request.status === 200) {
          status.textContent = "Received; opening the receipt…";
          window.location.assign(JSON.parse(request.responseText).receipt);
        } else {
          fail("The upload was refused (" + request.status + "). Try again.");
        }
      });
      request.addEventListener("error", function () { fail("The upload was interrupted. Try again."); });
      status.textContent = "Sending…";
      request.send(file);
    }).catch(function (error) { fail("Could not send the file: " + error.message); });
  });
})();
