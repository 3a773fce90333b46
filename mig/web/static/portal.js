// MiG appliance portal: small progressive helpers, no external code.
"use strict";

// Pages that follow changes by themselves.  A page with a [data-live] marker
// polls jobchanges (one cheap call for everything of the user that changed)
// while the marker says something on it can still change; when something
// did, it fetches itself again and swaps its content in place (no reload),
// and the new marker says whether to go on.  The live output of a running
// job polls jobtail, whose JSON reply is a list of objects.
function objectsOf(reply, kind) {
  return (Array.isArray(reply) ? reply : []).filter(function (o) {
    return o && o.object_type === kind;
  });
}

// Confirm destructive actions.
function bindConfirm(root) {
  root.querySelectorAll("[data-confirm]").forEach(function (el) {
    el.addEventListener("click", function (ev) {
      if (!window.confirm(el.getAttribute("data-confirm"))) { ev.preventDefault(); }
    });
  });
}

// Select-all checkbox for job and file lists.
function bindSelectAll(root) {
  root.querySelectorAll("input[data-select-all]").forEach(function (box) {
    box.addEventListener("change", function () {
      document.querySelectorAll("input[name='" + box.getAttribute("data-select-all") + "']")
        .forEach(function (b) { b.checked = box.checked; });
    });
  });
}

function bindTails(root) {
  root.querySelectorAll("[data-tail]").forEach(function (pre) {
    var url = pre.getAttribute("data-tail");
    function poll() {
      if (!document.body.contains(pre)) { return; }  // replaced by a newer page
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); })
        .then(function (reply) {
          var tail = objectsOf(reply, "tail")[0];
          if (!tail) { setTimeout(poll, 5000); return; }
          var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          pre.textContent = tail.text;
          if (atEnd) { pre.scrollTop = pre.scrollHeight; }
          if (tail.running) { setTimeout(poll, 1000); }
        }).catch(function () { setTimeout(poll, 5000); });
    }
    poll();
  });
}

// Fetch this page again and swap its <main> in place (no reload); resolves
// to the new <main>, rejects when the page could not be had.
function swapMain() {
  return fetch(window.location.href, { credentials: "same-origin" })
    .then(function (r) { return r.text(); })
    .then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
      var main = document.querySelector("main");
      if (!fresh || !main) { throw new Error("no page content"); }
      main.innerHTML = fresh.innerHTML;
      bindPage(main);
      return main;
    });
}

function bindLive(root) {
  var marker = root.querySelector("[data-live]");
  if (!marker || marker.getAttribute("data-live") !== "1") { return; }
  var since = marker.getAttribute("data-since");
  var job = marker.getAttribute("data-job");
  var every = parseInt(marker.getAttribute("data-every") || "0", 10);
  var delay = 1000;
  function swap() {
    swapMain().catch(function () { setTimeout(swap, 5000); });
  }
  function poll() {
    if (!document.body.contains(marker)) { return; }
    fetch("/cgi-bin/jobchanges.py?output_format=json&since=" + encodeURIComponent(since),
          { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (reply) {
        var now = objectsOf(reply, "text").filter(function (o) {
          return o.text.indexOf("now: ") === 0;
        })[0];
        var rows = (objectsOf(reply, "table")[0] || {}).rows || [];
        var mine = rows.filter(function (row) { return !job || row[0] === job; });
        if (now) { since = now.text.slice(5); }
        if (mine.length) { swap(); return; }
        delay = Math.min(delay * 1.2, 5000);  // polite while nothing happens
        setTimeout(poll, delay);
      }).catch(function () { setTimeout(poll, 5000); });
  }
  if (every > 0) { setTimeout(swap, every * 1000); } else { setTimeout(poll, delay); }
}

function bindPage(root) {
  bindConfirm(root);
  bindSelectAll(root);
  bindTails(root);
  bindLive(root);
}

document.addEventListener("DOMContentLoaded", function () {
  bindPage(document);
  // A refused form: its summary of the problems (on top) is what is read first.
  var problems = document.getElementById("error-summary");
  if (problems) { problems.focus({ preventScroll: true }); }
  // Uploads (form[data-upload]) are files.js's: the Files and Submit Job pages load it.
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
