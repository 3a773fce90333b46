// MiG appliance portal: small progressive helpers, no external code.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Confirm destructive actions.
  document.querySelectorAll("[data-confirm]").forEach(function (el) {
    el.addEventListener("click", function (ev) {
      if (!window.confirm(el.getAttribute("data-confirm"))) { ev.preventDefault(); }
    });
  });
  // Select-all checkbox for job and file lists.
  document.querySelectorAll("input[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      document.querySelectorAll("input[name='" + box.getAttribute("data-select-all") + "']")
        .forEach(function (b) { b.checked = box.checked; });
    });
  });
  // Upload with a progress bar.
  document.querySelectorAll("form[data-upload]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      var bar = form.querySelector("progress");
      if (!bar || !window.XMLHttpRequest) { return; }
      ev.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; }
      });
      xhr.addEventListener("load", function () {
        document.open(); document.write(xhr.responseText); document.close();
      });
      xhr.send(new FormData(form));
    });
  });
  // Live tail of a running job's output, and auto refresh of job pages.
  document.querySelectorAll("[data-tail]").forEach(function (pre) {
    var url = pre.getAttribute("data-tail");
    function poll() {
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); })
        .then(function (data) {
          pre.textContent = data.text;
          if (data.running) { setTimeout(poll, 2000); }
        }).catch(function () { setTimeout(poll, 5000); });
    }
    poll();
  });
  var refresh = document.querySelector("meta[name='mig-refresh']");
  if (refresh) { setTimeout(function () { window.location.reload(); },
                            1000 * parseInt(refresh.content, 10)); }
  // The shell: commands go to the shell backend; history with arrow keys.
  var shell = document.getElementById("shell-form");
  if (shell) {
    var input = shell.querySelector("input[name=command]");
    var out = document.getElementById("shell-output");
    var history = JSON.parse(sessionStorage.getItem("mig-shell-history") || "[]");
    var pos = history.length;
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowUp" && pos > 0) { pos -= 1; input.value = history[pos]; ev.preventDefault(); }
      if (ev.key === "ArrowDown" && pos < history.length) {
        pos += 1; input.value = history[pos] || ""; ev.preventDefault();
      }
    });
    shell.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var data = new FormData(shell);
      history.push(input.value); pos = history.length;
      sessionStorage.setItem("mig-shell-history", JSON.stringify(history.slice(-200)));
      fetch(shell.action, { method: "POST", body: new URLSearchParams(data),
                            credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (objs) {
          var text = objs.filter(function (o) { return o.object_type === "shell_output"; })
                         .map(function (o) { return o.text; }).join("");
          out.textContent += "$ " + input.value + "\n" + text;
          var cwd = objs.filter(function (o) { return o.object_type === "shell_output"; })[0];
          if (cwd && cwd.cwd !== undefined) { shell.querySelector("input[name=cwd]").value = cwd.cwd; }
          input.value = ""; out.scrollTop = out.scrollHeight;
        });
    });
  }
});
