// Shared by every page: the nav bar, JSON calls that show errors, job polling and key handling.
"use strict";

const facelab = {
  // fetch JSON from the API; throws Error(message) with the server's one-line error text.
  async api(path, options = {}) {
    const init = { ...options, headers: { ...(options.headers || {}) } };
    if (init.body !== undefined && typeof init.body !== "string") {
      init.body = JSON.stringify(init.body);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
    if (!response.ok) throw new Error((data && (data.text || data.error)) || `HTTP ${response.status}`);
    return data;
  },

  post(path, body) { return facelab.api(path, { method: "POST", body: body === undefined ? {} : body }); },

  // show a message in the page's #status line (kind: "", "ok" or "error").
  status(message, kind = "") {
    const el = document.getElementById("status");
    if (el) { el.textContent = message; el.className = kind; }
  },

  // run an async action, reporting its error in #status instead of losing it.
  async guard(action) {
    try { return await action(); } catch (err) { facelab.status(err.message, "error"); return undefined; }
  },

  // poll /api/jobs/ID until it finishes, updating a <progress> element; resolves with the job's result.
  async waitJob(jobId, progressEl) {
    for (;;) {
      const job = await facelab.api(`/api/jobs/${jobId}`);
      if (progressEl) {
        if (job.total) { progressEl.max = job.total; progressEl.value = job.done; } else progressEl.removeAttribute("value");
        progressEl.title = job.label;
      }
      if (job.finished) {
        if (job.error) throw new Error(job.error);
        return job.result;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  },

  // a URL for a workspace file; `bust` defeats the browser cache when the file changes.
  fileUrl(rel, bust) { return "/files/" + rel.split("/").map(encodeURIComponent).join("/") + (bust ? `?v=${bust}` : ""); },
  thumbUrl(rel, size = 128, bust) {
    return "/thumb/" + rel.split("/").map(encodeURIComponent).join("/") + `?size=${size}` + (bust ? `&v=${bust}` : "");
  },

  // keys typed into inputs/selects belong to them, not to page shortcuts.
  typing(event) {
    const t = event.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  },

  // One option's form field from its spec ({name, label, help, kind, default, min, max, choices}, as the server's
  // option_json sends it): a select for choices, a checkbox for bool, a number (and a slider when bounded).
  // Returns [row element, {get(), set(value)}]; the controls have id "opt-NAME".
  optionField(spec) {
    const row = document.createElement("div");
    row.className = "field";
    row.dataset.option = spec.name;
    const label = document.createElement("label");
    label.textContent = spec.label;
    label.title = `${spec.name}: ${spec.help}`;
    label.htmlFor = `opt-${spec.name}`;
    const control = document.createElement("div");
    control.className = "control";
    let field;
    if (spec.choices) {
      const select = document.createElement("select");
      select.id = `opt-${spec.name}`; select.name = spec.name; select.title = spec.help;
      for (const choice of spec.choices) select.add(new Option(String(choice), String(choice)));
      control.append(select);
      field = { get: () => facelab.optionValue(spec, select.value), set: (v) => { select.value = String(v); } };
    } else if (spec.kind === "bool") {
      const box = document.createElement("input");
      box.type = "checkbox"; box.id = `opt-${spec.name}`; box.name = spec.name; box.title = spec.help;
      control.append(box);
      field = { get: () => box.checked, set: (v) => { box.checked = Boolean(v); } };
    } else {
      const number = document.createElement("input");
      number.type = "number"; number.id = `opt-${spec.name}`; number.name = spec.name; number.title = spec.help;
      number.step = spec.kind === "int" ? "1" : "any";
      if (spec.min !== null) number.min = spec.min;
      if (spec.max !== null) number.max = spec.max;
      if (spec.min !== null && spec.max !== null) {
        const slider = document.createElement("input");
        slider.type = "range"; slider.min = spec.min; slider.max = spec.max; slider.step = number.step === "any" ? "0.01" : "1";
        slider.name = spec.name + "-slider"; slider.title = spec.help;
        slider.setAttribute("aria-label", spec.label);
        slider.addEventListener("input", () => { number.value = slider.value; });
        number.addEventListener("input", () => { slider.value = number.value; });
        control.append(slider);
        field = { get: () => facelab.optionValue(spec, number.value), set: (v) => { number.value = v; slider.value = v; } };
      } else {
        field = { get: () => facelab.optionValue(spec, number.value), set: (v) => { number.value = v; } };
      }
      control.append(number);
    }
    row.append(label, control);
    return [row, field];
  },

  optionValue(spec, text) {
    if (spec.kind === "int") return Math.round(Number(text));
    if (spec.kind === "float") return Number(text);
    return text;
  },

  async nav(current) {
    const bar = document.createElement("nav");
    bar.innerHTML = '<a class="brand" href="/">facelab</a>';
    document.body.prepend(bar);
    const info = await facelab.api("/api/info");
    for (const page of info.pages) {
      const a = document.createElement("a");
      a.href = "/" + page.name; a.textContent = page.title; a.title = page.help;
      if (page.name === current) a.className = "here";
      bar.appendChild(a);
    }
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = "Synthetic media — use only with the consent of the people shown";
    bar.appendChild(label);
    return info;
  },
};
