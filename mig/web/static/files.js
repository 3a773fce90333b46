// MiG appliance: the file manager (Files page) and the upload widget (Files
// page and Submit Job's "Upload files"), plain JavaScript, no external code.
//
// Actions in place: on the Files page every state-changing form (the
// selection buttons, New folder, Rename, Revoke, Empty the trash) is posted
// with fetch asking for output_format=json; the outcome is shown in
// #fm-outcome and the listing is fetched again and swapped in, so the page
// stays the Files page.  Without JavaScript the forms post as usual.
//
// Uploads go through uploadchunked in parts of CHUNK bytes into
// .upload-cache/KEY (KEY: size, date and name of the file), each part with a
// Content-Range header; first the widget asks what already arrived (action
// status), so a cancelled or broken upload of the same file resumes there.
// The finished file is moved into place by the upload backend (cached=KEY),
// which also unpacks archives and submits .mRSL files when asked.
"use strict";

var CHUNK = 8 * 1024 * 1024;

function fmSize(bytes) {
  var units = ["bytes", "KB", "MB", "GB", "TB"], i = 0;
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
  return i === 0 ? bytes + " bytes" : bytes.toFixed(1) + " " + units[i];
}

function fmCsrf() {
  var field = document.querySelector("input[name=_csrf]");
  return field ? field.value : "";
}

function fmIsFilesPage() {
  return /\/fileman\.py$/.test(window.location.pathname);
}

function fmEl(tag, attrs, text) {
  var el = document.createElement(tag);
  Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
  if (text !== undefined) { el.textContent = text; }
  return el;
}

// -- outcome -----------------------------------------------------------------------
function fmCellText(cell) {
  if (cell && typeof cell === "object") { return String(cell.text || ""); }
  return String(cell);
}

// The lines worth showing from a JSON reply: [[css class, text], ...].
function fmOutcomeLines(reply) {
  var lines = [], status = null, hasError = false;
  (Array.isArray(reply) ? reply : []).forEach(function (o) {
    var kind = o && o.object_type;
    if (kind === "script_status") { status = o; return; }
    if (kind === "success") { lines.push(["ok", o.text]); }
    if (kind === "error_text") { lines.push(["error", o.text]); hasError = true; }
    if (kind === "warning") { lines.push(["warning", o.text]); }
    if (kind === "text") { lines.push(["ok", o.text]); }
    if (kind === "file_not_found") { lines.push(["error", o.name + ": No such file or directory"]); hasError = true; }
    if (kind === "form") { lines.push(["error", "This needs more input: use the form on the page of this action."]); }
    if (kind === "table" && (o.kind === "uploadstatus" || o.kind === "submitstatuslist")) {
      (o.rows || []).forEach(function (row) {
        // uploadstatus: File, Size, Status, Message; submitstatuslist: File, Status (1 ok), Job ID, Message
        var failed = o.kind === "uploadstatus" ? row[2] !== "uploaded" : !Number(row[1]);
        var text = o.kind === "uploadstatus" ? row[0] + ": " + row[3]
          : failed ? row[0] + ": not submitted: " + row[3]
          : row[0] + ": submitted as job " + fmCellText(row[2]);
        lines.push([failed ? "error" : "ok", text]);
        hasError = hasError || failed;
      });
    }
  });
  if (status && status.exit_code !== 0 && !hasError) {
    lines.push(["error", "Failed: " + (status.description || "exit code " + status.exit_code)]);
  }
  return lines;
}

function fmOutcomeBox() {
  var box = document.getElementById("fm-outcome");
  if (!box) {
    box = fmEl("div", { id: "fm-outcome", "class": "fm-outcome", role: "status", "aria-live": "polite" });
    var main = document.querySelector("main");
    var heading = main && main.querySelector("h1");
    if (heading) { heading.insertAdjacentElement("afterend", box); } else if (main) { main.prepend(box); }
  }
  return box;
}

function fmShowOutcome(lines) {
  var box = fmOutcomeBox();
  box.innerHTML = "";
  lines.forEach(function (line) {
    box.appendChild(fmEl("p", { "class": "msg " + line[0] }, line[1]));
  });
}

// Fetch the Files page again and swap its content in; the outcome stays on top.
function fmRefresh() {
  var box = document.getElementById("fm-outcome");
  return swapMain().then(function (main) {
    if (box) {
      var heading = main.querySelector("h1");
      if (heading) { heading.insertAdjacentElement("afterend", box); } else { main.prepend(box); }
    }
    bindFiles(main);
  }, function () {});  // the listing stays as it was; the outcome has been said
}

// POST params as JSON; show the outcome; on the Files page refresh the listing.
// typed: the text boxes of the form that was sent ([[name, value]]): when the
// action failed they get their text back after the refresh, marked with the
// problem right below them.
function fmPost(action, params, typed) {
  params.set("output_format", "json");
  if (!params.get("_csrf")) { params.set("_csrf", fmCsrf()); }
  params.delete("_once");
  var problems = [];
  return fetch(action, { method: "POST", body: params, credentials: "same-origin" })
    .then(function (r) {
      return r.text().then(function (text) {
        try { return JSON.parse(text); } catch (e) { throw new Error(text || ("HTTP " + r.status)); }
      });
    })
    .then(function (reply) {
      var lines = fmOutcomeLines(reply);
      problems = lines.filter(function (l) { return l[0] === "error"; });
      fmShowOutcome(lines);
    })
    .catch(function (err) {
      problems = [["error", "Not done: " + err.message]];
      fmShowOutcome(problems);
    })
    .then(function () { return fmIsFilesPage() ? fmRefresh() : null; })
    .then(function () { if (problems.length) { fmKeepTyped(action, typed || [], problems); } });
}

// The form that was sent, found again in the fresh page: its text back, and
// the problem under its first text box (aria-invalid, described by it).
function fmKeepTyped(action, typed, problems) {
  if (!typed.length) { return; }
  var form = Array.prototype.filter.call(document.querySelectorAll("main form[method=post]"),
    function (f) {
      return f.getAttribute("action") === action && typed.every(function (t) {
        return f.querySelector("input[name='" + t[0] + "']");
      });
    })[0];
  if (!form) { return; }
  typed.forEach(function (t) { form.querySelector("input[name='" + t[0] + "']").value = t[1]; });
  var input = form.querySelector("input[name='" + typed[0][0] + "']");
  var note = fmEl("div", { id: "fm-field-error", "class": "field-error", role: "alert" },
                  problems.map(function (p) { return p[1]; }).join(" "));
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", "fm-field-error");
  input.insertAdjacentElement("afterend", note);
  input.focus();
}

// -- actions in place (Files page) ---------------------------------------------------
function fmBindForms(root) {
  root.querySelectorAll("form[method=post]").forEach(function (form) {
    if (form.hasAttribute("data-upload") || form.fmBound || /\/logout$/.test(form.getAttribute("action") || "")) { return; }
    form.fmBound = true;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var params = new URLSearchParams(new FormData(form));
      var button = ev.submitter;
      if (button && button.name) { params.set(button.name, button.value); }
      var what = params.get("action");
      if ((what === "copy" || what === "move") && !params.get("dst")) {
        fmShowOutcome([["error", "Type the destination folder (or new name) first."]]);
        var dst = form.querySelector("input[name=dst]");
        if (dst) { dst.focus(); }
        return;
      }
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      var typed = Array.prototype.filter.call(form.querySelectorAll("input[type=text]"),
        function (i) { return i.name && i.value; }).map(function (i) { return [i.name, i.value]; });
      fmPost(form.getAttribute("action"), params, typed);
    });
  });
}

// A destination box beside Copy, Move and Pack (no JavaScript: a form page asks).
function fmAddDestination(root) {
  var copy = root.querySelector("form button[name=action][value=copy]");
  var bar = copy && copy.closest(".actions");
  if (!bar || bar.querySelector("input[name=dst]")) { return; }
  var label = fmEl("label", { "for": "fm-dst", "class": "fm-dst" }, "Destination or archive name ");
  var input = fmEl("input", { id: "fm-dst", type: "text", name: "dst",
                              placeholder: "folder, new name or NAME.zip" });
  label.appendChild(input);
  bar.appendChild(label);
}

// Rename in the row: the link becomes a name box with Save and Cancel.
function fmBindRename(root) {
  root.querySelectorAll("table[data-kind=filelist] a[href*='filemove.py']").forEach(function (link) {
    link.addEventListener("click", function (ev) {
      ev.preventDefault();
      var path = new URL(link.href).searchParams.get("path");
      var box = fmEl("span", { "class": "fm-rename" });
      var input = fmEl("input", { type: "text", value: path, "aria-label": "new name of " + path });
      var save = fmEl("button", { type: "button" }, "Save");
      var cancel = fmEl("button", { type: "button", "class": "secondary" }, "Cancel");
      function go() {
        save.disabled = true;
        fmPost("/cgi-bin/fileaction.py", new URLSearchParams(
          { action: "move", path: path, dst: input.value }));
      }
      save.addEventListener("click", go);
      cancel.addEventListener("click", function () { box.replaceWith(link); });
      input.addEventListener("keydown", function (e) {
        if (e.key === "Enter") { e.preventDefault(); go(); }
        if (e.key === "Escape") { box.replaceWith(link); }
      });
      box.appendChild(input); box.appendChild(save); box.appendChild(cancel);
      link.replaceWith(box);
      input.focus();
    });
  });
}

// Share link addresses in full, each with a Copy button.
function fmBindShareLinks(root) {
  root.querySelectorAll("table[data-kind=sharelinks] a[href*='/share_redirect/']").forEach(function (a) {
    if (a.fmBound) { return; }
    a.fmBound = true;
    a.textContent = a.href;
    a.classList.add("fm-share-url");
    var copy = fmEl("button", { type: "button", "class": "secondary fm-copy" }, "Copy");
    copy.addEventListener("click", function () {
      function done() { fmShowOutcome([["ok", "Copied " + a.href]]); }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(a.href).then(done, done);
      } else {
        var range = document.createRange(); range.selectNodeContents(a);
        var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
        document.execCommand("copy"); done();
      }
    });
    a.insertAdjacentElement("afterend", copy);
  });
}

// -- uploads -----------------------------------------------------------------------
function fmJson(xhrOrText) {
  try { return JSON.parse(xhrOrText); } catch (e) { return null; }
}

function fmReplyOk(reply) {
  return Array.isArray(reply) && reply[0] && reply[0].exit_code === 0;
}

function fmReplyError(reply, fallback) {
  var errors = (Array.isArray(reply) ? reply : []).filter(function (o) {
    return o.object_type === "error_text";
  }).map(function (o) { return o.text; });
  return errors.join("; ") || fallback;
}

// One request; resolves with the parsed JSON reply, rejects on a network error or abort.
function fmSend(upload, url, data, headers, onProgress) {
  return new Promise(function (resolve, reject) {
    var xhr = new XMLHttpRequest();
    upload.xhr = xhr;
    xhr.open("POST", url);
    Object.keys(headers || {}).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
    if (onProgress) { xhr.upload.addEventListener("progress", function (e) { onProgress(e.loaded); }); }
    xhr.addEventListener("load", function () { resolve(fmJson(xhr.responseText) || xhr.responseText); });
    xhr.addEventListener("error", function () { reject(new Error("the connection broke")); });
    xhr.addEventListener("abort", function () { reject(new Error("cancelled")); });
    xhr.send(data);
  });
}

function fmChunkForm(fields, blob, key) {
  var data = new FormData();
  data.append("_csrf", fmCsrf());
  Object.keys(fields).forEach(function (k) { data.append(k, fields[k]); });
  data.append("output_format", "json");
  if (blob) { data.append("files[]", blob, key); }
  return data;
}

// How many bytes of this file the server has already (0 when none).
function fmArrived(upload) {
  var data = fmChunkForm({ action: "status", "files[]filename": upload.key });
  return fmSend(upload, "/cgi-bin/uploadchunked.py", data).then(function (reply) {
    var table = (Array.isArray(reply) ? reply : []).filter(function (o) {
      return o.object_type === "table" && o.kind === "uploadfiles";
    })[0];
    var row = table && table.rows[0];
    var size = row ? parseInt(row[1], 10) : 0;
    return size <= upload.file.size ? size : 0;
  });
}

function fmRow(file) {
  var row = fmEl("li", { "class": "fm-file", "data-name": file.name, "data-state": "waiting" });
  row.appendChild(fmEl("span", { "class": "fm-name" }, file.name));
  var bar = fmEl("progress", { max: "100", value: "0", "aria-label": "upload of " + file.name });
  row.appendChild(bar);
  row.appendChild(fmEl("span", { "class": "fm-pct" }, "0%"));
  row.appendChild(fmEl("span", { "class": "fm-speed" }, ""));
  row.appendChild(fmEl("span", { "class": "fm-note" }, "waiting"));
  var cancel = fmEl("button", { type: "button", "class": "secondary fm-cancel" }, "Cancel");
  row.appendChild(cancel);
  return row;
}

function fmUploadOne(widget, upload) {
  var file = upload.file, row = upload.row, started = Date.now(), sentBefore = 0;
  var pct = row.querySelector(".fm-pct"), bar = row.querySelector("progress");
  var speed = row.querySelector(".fm-speed"), note = row.querySelector(".fm-note");
  function show(done) {
    var percent = file.size ? Math.floor(done * 100 / file.size) : 100;
    var seconds = Math.max((Date.now() - started) / 1000, 0.001);
    bar.value = percent; pct.textContent = percent + "%";
    row.setAttribute("data-done", String(done));
    speed.textContent = fmSize(Math.round((done - upload.resumedAt) / seconds)) + "/s";
    widget.announce(upload, percent);
  }
  row.setAttribute("data-state", "uploading");
  note.textContent = "asking what already arrived";
  return fmArrived(upload).then(function (offset) {
    upload.resumedAt = offset;
    started = Date.now();
    if (offset > 0) {
      row.setAttribute("data-resumed-at", String(offset));
      note.textContent = "resumed at " + fmSize(offset);
    } else {
      note.textContent = "uploading";
    }
    show(offset);
    function next(position) {
      var end = Math.min(position + CHUNK, file.size);
      // an empty file is one empty part without a range (the whole file)
      var headers = file.size ? { "Content-Range": "bytes " + position + "-" + (end - 1) + "/" + file.size } : {};
      sentBefore = position;
      return fmSend(upload, "/cgi-bin/uploadchunked.py",
                    fmChunkForm({ action: "put" }, file.slice(position, end), upload.key), headers,
                    function (loaded) { show(Math.min(sentBefore + loaded, end)); })
        .then(function (reply) {
          if (!fmReplyOk(reply)) { throw new Error(fmReplyError(reply, "the server refused a part")); }
          show(end);
          return end >= file.size ? end : next(end);
        });
    }
    if (file.size > 0 && offset >= file.size) { return offset; }  // all there: just finish
    return next(offset);
  }).then(function () {
    note.textContent = "finishing";
    var data = widget.fields();
    data.append("cached", upload.key);
    data.append("filename", file.name);
    return fmSend(upload, widget.form.getAttribute("action"), data);
  }).then(function (reply) {
    var lines = fmOutcomeLines(reply);
    var failed = !fmReplyOk(reply);
    row.setAttribute("data-state", failed ? "failed" : "done");
    note.textContent = failed ? fmReplyError(reply, "failed") : "done";
    row.querySelector(".fm-cancel").disabled = true;
    return lines;
  }, function (err) {
    var cancelled = upload.cancelled;
    row.setAttribute("data-state", cancelled ? "cancelled" : "failed");
    var kept = parseInt(row.getAttribute("data-done") || "0", 10);
    note.textContent = (cancelled ? "cancelled" : "stopped: " + err.message) +
      (kept > 0 ? "; upload the same file again to resume" : "");
    row.querySelector(".fm-cancel").disabled = true;
    return [["error", file.name + ": " + (cancelled ? "cancelled" : err.message)]];
  });
}

function fmBindUpload(form) {
  if (form.fmBound) { return; }
  form.fmBound = true;
  var input = form.querySelector("input[type=file]");
  var button = form.querySelector("button[type=submit]");
  var overall = form.querySelector("progress");
  var list = fmEl("ul", { "class": "fm-uploads", "aria-label": "uploads" });
  // the live text screen readers hear (html.py's .progress-text when the form has one)
  var status = form.querySelector(".progress-text") ||
    fmEl("p", { role: "status", "aria-live": "polite" });
  status.classList.add("fm-upload-status");
  var drop = fmEl("div", { "class": "fm-drop" }, "Drop files here to upload them");
  form.appendChild(drop);
  if (!status.parentNode) { form.appendChild(status); }
  form.appendChild(list);
  var widget = { form: form, busy: false, uploads: [] };
  widget.fields = function () {
    var data = new FormData();
    data.append("_csrf", fmCsrf());
    new FormData(form).forEach(function (value, key) {
      if (key !== "files" && key !== "_csrf" && key !== "_once") { data.append(key, value); }
    });
    data.append("output_format", "json");
    return data;
  };
  widget.announce = function (upload, percent) {
    var done = 0, total = 0;
    widget.uploads.forEach(function (u) {
      total += u.file.size;
      done += parseInt(u.row.getAttribute("data-done") || "0", 10);
    });
    if (overall) { overall.max = 100; overall.value = total ? Math.floor(done * 100 / total) : 100; }
    // said in steps of 10% (and for each new file), not at every progress event
    var number = widget.uploads.indexOf(upload) + 1, step = Math.floor(percent / 10);
    if (widget.said !== number + ":" + step) {
      widget.said = number + ":" + step;
      status.textContent = "Uploading file " + number + " of " + widget.uploads.length + ": " +
        percent + "%";
    }
  };
  function start(files) {
    if (widget.busy) { return; }
    if (!files.length) { status.textContent = "Choose or drop files first."; return; }
    widget.busy = true;
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    list.innerHTML = "";
    widget.uploads = Array.prototype.map.call(files, function (file) {
      var upload = { file: file, row: fmRow(file), resumedAt: 0,
                     key: (file.size + "-" + file.lastModified + "-" + file.name).slice(0, 240) };
      upload.row.querySelector(".fm-cancel").addEventListener("click", function () {
        upload.cancelled = true;
        if (upload.xhr) { upload.xhr.abort(); }
      });
      list.appendChild(upload.row);
      return upload;
    });
    var lines = [];
    widget.uploads.reduce(function (chain, upload) {
      return chain.then(function () {
        if (upload.cancelled) { return null; }
        return fmUploadOne(widget, upload).then(function (more) { lines = lines.concat(more); });
      });
    }, Promise.resolve()).then(function () {
      var ok = widget.uploads.filter(function (u) { return u.row.getAttribute("data-state") === "done"; });
      status.textContent = "Upload finished: " + ok.length + " of " + widget.uploads.length +
        " file" + (widget.uploads.length === 1 ? "" : "s") + " uploaded.";
      widget.busy = false;
      button.disabled = false;
      form.removeAttribute("aria-busy");
      if (input) { input.value = ""; }
      fmShowOutcome(lines);
      if (fmIsFilesPage() && ok.length) { fmRefreshKeepingUploads(form, list, status, overall); }
    });
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    start(input ? input.files : []);
  });
  ["dragenter", "dragover"].forEach(function (name) {
    form.addEventListener(name, function (ev) { ev.preventDefault(); form.classList.add("fm-dragging"); });
  });
  form.addEventListener("dragleave", function () { form.classList.remove("fm-dragging"); });
  form.addEventListener("drop", function (ev) {
    ev.preventDefault();
    form.classList.remove("fm-dragging");
    start(ev.dataTransfer ? ev.dataTransfer.files : []);
  });
}

// After uploads the listing is fetched again; the finished rows, the live
// text and the overall bar stay in view.
function fmRefreshKeepingUploads(oldForm, list, status, overall) {
  fmRefresh().then(function () {
    var form = document.querySelector("form[data-upload]");
    var fresh = form && form.querySelector(".fm-uploads");
    if (fresh && form !== oldForm) {
      fresh.replaceWith(list);
      form.querySelector(".fm-upload-status").replaceWith(status);
      var bar = form.querySelector("progress");
      if (bar && overall) { bar.replaceWith(overall); }
    }
  });
}

function bindFiles(root) {
  root.querySelectorAll("form[data-upload]").forEach(fmBindUpload);
  if (!fmIsFilesPage()) { return; }
  fmAddDestination(root);
  fmBindForms(root);
  fmBindRename(root);
  fmBindShareLinks(root);
}

document.addEventListener("DOMContentLoaded", function () { bindFiles(document); });
