/* Progressive enhancement only: every page works without this file.
   Loaded with defer (CSP forbids inline script). No libraries. */
(function () {
  "use strict";

  var doc = document;
  var uid = 0;

  doc.documentElement.classList.add("js");

  function newId(prefix) {
    var id;
    do { id = prefix + "-" + (++uid); } while (doc.getElementById(id));
    return id;
  }

  function describedBy(el) {
    return (el.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
  }

  function setDescribedBy(el, ids) {
    if (ids.length) { el.setAttribute("aria-describedby", ids.join(" ")); }
    else { el.removeAttribute("aria-describedby"); }
  }

  /* (1) Character counter: textarea[data-maxlength].
     Counts code points, like the server (which counts NFC characters). */
  function codePoints(text) {
    if (text.normalize) { text = text.normalize("NFC"); }
    return [...text].length;
  }

  function setUpCounter(ta) {
    var max = parseInt(ta.getAttribute("data-maxlength"), 10);
    if (!(max > 0)) { return; }
    // The first aria-describedby token names the counter element, but only
    // if it is meant for it (empty, or a live region): a written hint such
    // as "请写明具体情况，10至2000个字。" must not be overwritten.
    var out = doc.getElementById(describedBy(ta)[0] || "");
    if (out && out.textContent.trim() && !out.hasAttribute("aria-live")) { out = null; }
    if (!out) {
      out = doc.createElement("p");
      out.className = "hint counter";
      out.setAttribute("aria-live", "polite");
      out.id = newId((ta.id || "text") + "-count");
      ta.insertAdjacentElement("afterend", out);
      setDescribedBy(ta, describedBy(ta).concat(out.id));
    }
    function update() {
      var n = codePoints(ta.value);
      var text = "已输入 " + n + " / " + max + " 字";
      if (n > max) { text += "，超出 " + (n - max) + " 字，请精简"; }
      if (out.textContent !== text) { out.textContent = text; }
      out.classList.toggle("is-over", n > max);
    }
    ta.addEventListener("input", update);
    window.addEventListener("pageshow", update); // text restored by Back
    update();
  }

  /* (2) Attachments: input[type=file][data-max-bytes][data-max-files]
     (and data-max-total-bytes if present). Warn on change; block the
     submit while the choice is too big. The server checks again. */
  function formatBytes(n) {
    if (n >= 1048576) { return (Math.round(n / 104857.6) / 10) + " MB"; }
    return Math.max(1, Math.round(n / 1024)) + " KB";
  }

  function fileProblem(input) {
    var maxBytes = parseInt(input.getAttribute("data-max-bytes"), 10);
    var maxFiles = parseInt(input.getAttribute("data-max-files"), 10);
    var maxTotal = parseInt(input.getAttribute("data-max-total-bytes"), 10);
    var files = Array.prototype.slice.call(input.files || []);
    if (maxFiles > 0 && files.length > maxFiles) {
      return "最多只能上传 " + maxFiles + " 个附件，您选择了 " + files.length + " 个，请重新选择。";
    }
    var big = files.filter(function (f) { return maxBytes > 0 && f.size > maxBytes; })[0];
    if (big) {
      return "附件“" + big.name + "”有 " + formatBytes(big.size) + "，超过了每个文件 " +
        formatBytes(maxBytes) + " 的限制，请压缩后或换一个文件重新选择。";
    }
    var total = files.reduce(function (sum, f) { return sum + f.size; }, 0);
    if (maxTotal > 0 && total > maxTotal) {
      return "所选附件合计 " + formatBytes(total) + "，超过了 " + formatBytes(maxTotal) + " 的限制，请减少附件。";
    }
    return "";
  }

  function showFileProblem(input) {
    var message = fileProblem(input);
    var state = input.jsFileError;
    var field = input.closest(".field");
    if (!message) {
      if (state) {
        state.box.parentNode.removeChild(state.box);
        setDescribedBy(input, describedBy(input).filter(function (id) { return id !== state.box.id; }));
        if (state.invalid === null) { input.removeAttribute("aria-invalid"); }
        if (field && !state.hadError) { field.classList.remove("has-error"); }
        input.jsFileError = null;
      }
      return true;
    }
    if (!state) {
      var box = doc.createElement("p");
      box.className = "field-error";
      box.id = newId((input.id || "file") + "-check");
      box.setAttribute("role", "alert");
      // Errors sit above their control in this site's forms.
      input.insertAdjacentElement("beforebegin", box);
      state = input.jsFileError = {
        box: box,
        invalid: input.getAttribute("aria-invalid"),
        hadError: !!(field && field.classList.contains("has-error"))
      };
      setDescribedBy(input, describedBy(input).concat(box.id));
    }
    state.box.textContent = message;
    input.setAttribute("aria-invalid", "true");
    if (field) { field.classList.add("has-error"); }
    return false;
  }

  function setUpFileInput(input) {
    input.addEventListener("change", function () { showFileProblem(input); });
    if (input.form) {
      input.form.addEventListener("submit", function (event) {
        if (!showFileProblem(input)) {
          event.preventDefault();
          input.focus();
        }
      });
    }
  }

  /* (3) Print buttons: [data-print]. Revealed if the template hid them. */
  function setUpPrint(button) {
    button.removeAttribute("hidden");
    button.addEventListener("click", function (event) {
      event.preventDefault();
      window.print();
    });
  }

  function each(selector, fn) {
    Array.prototype.forEach.call(doc.querySelectorAll(selector), fn);
  }

  each("textarea[data-maxlength]", setUpCounter);
  each("input[type=file][data-max-bytes][data-max-files]", setUpFileInput);
  each("[data-print]", setUpPrint);

  /* (4) A form shown again with errors: move focus to the summary so it is read out first. */
  var summary = doc.getElementById("form-errors");
  if (summary) {
    summary.focus();
  }
})();
