// WCAG 2.1 AA checks run in the page by tests/browser/test_layout_a11y.py
// (through Selenium's execute_script): no external checker, just the rules
// this portal must keep.  migA11yProblems() returns one line per problem,
// each naming the element at fault; an empty list means the page passes.

function migA11yProblems() {
  var problems = [];

  function describe(el) {
    var name = el.tagName.toLowerCase();
    if (el.id) { name += "#" + el.id; }
    if (typeof el.className === "string" && el.className.trim()) {
      name += "." + el.className.trim().split(/\s+/).join(".");
    }
    var text = String(el.textContent || el.value || "").trim().replace(/\s+/g, " ");
    return name + (text ? ' "' + text.slice(0, 40) + '"' : "");
  }

  function isShown(el) {
    var style = getComputedStyle(el);
    return el.getClientRects().length > 0 && style.visibility !== "hidden" &&
      style.display !== "none";
  }

  function parseColour(text) {
    var m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) { return null; }
    var parts = m[1].split(/[,\s/]+/).filter(Boolean).map(parseFloat);
    return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
  }

  function over(top, below) {  // top composited over an opaque colour
    return { r: top.r * top.a + below.r * (1 - top.a), g: top.g * top.a + below.g * (1 - top.a),
             b: top.b * top.a + below.b * (1 - top.a), a: 1 };
  }

  // The colour behind el: its own and its ancestors' backgrounds, composited,
  // over the white of the canvas.
  function background(el) {
    var layers = [];
    for (var node = el; node && node.nodeType === 1; node = node.parentElement) {
      var colour = parseColour(getComputedStyle(node).backgroundColor);
      if (colour && colour.a > 0) {
        layers.push(colour);
        if (colour.a >= 1) { break; }
      }
    }
    var result = { r: 255, g: 255, b: 255, a: 1 };
    for (var i = layers.length - 1; i >= 0; i--) { result = over(layers[i], result); }
    return result;
  }

  function luminance(c) {
    function channel(v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }
    return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  }

  function ratio(a, b) {
    var la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }

  function ownText(el) {
    if (/^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName)) {
      return el.type === "hidden" || el.type === "checkbox" || el.type === "radio" ? "" :
        (el.value || (el.options && el.selectedIndex >= 0 ? el.options[el.selectedIndex].text : ""));
    }
    var text = "";
    for (var n = el.firstChild; n; n = n.nextSibling) {
      if (n.nodeType === 3) { text += n.nodeValue; }
    }
    return text.trim();
  }

  // 1. Text contrast: 4.5:1, or 3:1 for large text (24px, or 18.66px bold).
  document.querySelectorAll("body *").forEach(function (el) {
    if (el.closest("svg, script, style, noscript, option") || el.disabled) { return; }
    if (!ownText(el) || !isShown(el)) { return; }
    var style = getComputedStyle(el);
    var size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    var needed = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    var fg = parseColour(style.color), bg = background(el);
    if (!fg) { return; }
    var got = ratio(over(fg, bg), bg);
    if (got < needed) {
      problems.push("contrast " + got.toFixed(2) + ":1 < " + needed + ":1 (" + style.color +
                    " on rgb(" + [bg.r, bg.g, bg.b].map(Math.round).join(", ") + ")): " +
                    describe(el));
    }
  });

  // 2. Every form control has an accessible name.
  function labelled(el) {
    if ((el.getAttribute("aria-label") || "").trim()) { return true; }
    var by = el.getAttribute("aria-labelledby");
    if (by && by.split(/\s+/).some(function (id) {
      var ref = document.getElementById(id);
      return ref && ref.textContent.trim();
    })) { return true; }
    if (el.id && Array.prototype.some.call(
      document.querySelectorAll("label[for]"),
      function (label) { return label.htmlFor === el.id && label.textContent.trim(); })) {
      return true;
    }
    var wrapping = el.closest("label");
    return !!(wrapping && wrapping.textContent.trim());
  }
  document.querySelectorAll("input, select, textarea").forEach(function (el) {
    if (el.type === "hidden") { return; }
    if (/^(submit|button|reset)$/.test(el.type) && (el.value || "").trim()) { return; }
    if (!labelled(el)) { problems.push("form control without a name: " + describe(el)); }
  });
  // Progress bars say what progresses.
  document.querySelectorAll("progress, meter, [role=progressbar]").forEach(function (el) {
    if (!labelled(el)) { problems.push("progress bar without a name: " + describe(el)); }
  });

  // 3. Images have alt text (empty for decoration); links and buttons a name.
  document.querySelectorAll("img").forEach(function (el) {
    if (!el.hasAttribute("alt")) { problems.push("img without alt: " + el.outerHTML.slice(0, 80)); }
  });
  document.querySelectorAll("a[href], button").forEach(function (el) {
    var images = Array.prototype.some.call(el.querySelectorAll("img[alt]"),
                                           function (img) { return img.alt.trim(); });
    if (!el.textContent.trim() && !(el.getAttribute("aria-label") || "").trim() &&
        !el.getAttribute("aria-labelledby") && !images) {
      problems.push("link or button without a name: " + el.outerHTML.slice(0, 80));
    }
  });

  // 4. One h1, a language, a skip link first that leads to main#content.
  var h1s = document.querySelectorAll("h1");
  if (h1s.length !== 1) { problems.push("expected one h1, found " + h1s.length); }
  if (!(document.documentElement.getAttribute("lang") || "").trim()) {
    problems.push("html has no lang");
  }
  var focusable = Array.prototype.filter.call(document.querySelectorAll(
    "a[href], button, input, select, textarea, [tabindex]"), function (el) {
    return !el.disabled && el.type !== "hidden" && el.getAttribute("tabindex") !== "-1";
  });
  var first = focusable[0];
  if (!first || !first.classList.contains("skip-link") || first.getAttribute("href") !== "#content") {
    problems.push("the first focusable element is not a skip link to #content: " +
                  (first ? describe(first) : "none"));
  }
  var main = document.getElementById("content");
  if (!main || main.tagName !== "MAIN") { problems.push("no main#content for the skip link"); }

  // 5. No id twice.
  var seen = {};
  document.querySelectorAll("[id]").forEach(function (el) {
    if (seen[el.id]) { problems.push("duplicate id: " + el.id); }
    seen[el.id] = true;
  });
  return problems;
}
