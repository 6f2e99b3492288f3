// Uploads from a channel's page: pick or drop files, then each one goes on its own to the
// channel's one upload URL (POST /api/repo/CHANNEL), as twine sends a Python file and curl
// an R package, with this session's CSRF token in the X-CSRF-Token header and
// `Accept: application/json`. Each row shows its progress and the server's own answer.
"use strict";

const uploader = document.getElementById("uploader");

// An R package file as R CMD build and R CMD INSTALL --build name it: name_version.tar.gz
// (source), .tgz (macOS) or .zip (Windows), name_version_R_platform.tar.gz (Linux). A Python
// sdist is name-version.tar.gz: its name never has `_` followed by digits and then `.tar.gz`.
const R_FILE = /^[A-Za-z][A-Za-z0-9.]*_\d+(?:[.-]\d+)+(_R_.+)?\.(tar\.gz|tgz|zip|tar\.xz|tar\.bz2)$/;

// The server's status -> what a person reads first; the detail follows.
const OUTCOMES = {
  201: ["accepted", "Accepted"],
  200: ["identical", "Already there: an identical file was uploaded before"],
  400: ["invalid", "Invalid"],
  401: ["refused", "Not signed in"],
  403: ["refused", "Refused"],
  404: ["refused", "Not found"],
  409: ["conflict", "Conflict"],
  413: ["too-large", "Too large"],
};

function guessKind(name) {
  const match = R_FILE.exec(name);
  if (!match) {
    return "python";
  }
  return match[1] || match[2] === "tgz" || match[2] === "zip"
    ? "cran_binary_package"
    : "cran_source_package";
}

function sizeText(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function formFor(row) {
  const form = new FormData();
  const kind = row.kind.value;
  if (kind === "python") {
    form.append(":action", "file_upload");
    form.append("protocol_version", "1");
    // No digest: the server hashes what arrives, and a session upload needs none.
  } else {
    form.append("filetype", kind);
    for (const field of ["platform", "rversion"]) {
      const value = row[field].value.trim();
      if (kind === "cran_binary_package" && value) {
        form.append(field, value);
      }
    }
  }
  form.append("content", row.file, row.file.name);
  return form;
}

// The answer's message: problem+json's `detail`, the JSON file's name, or the text body.
function answer(xhr) {
  const type = xhr.getResponseHeader("Content-Type") || "";
  if (type.includes("json")) {
    try {
      return JSON.parse(xhr.responseText);
    } catch (error) {
      return {detail: xhr.statusText};
    }
  }
  return {detail: xhr.responseText.trim() || xhr.statusText};
}

function show(row, outcome, message, link) {
  row.element.dataset.outcome = outcome;
  row.result.textContent = message;
  if (link) {
    const anchor = document.createElement("a");
    anchor.href = link.href;
    anchor.textContent = link.text;
    row.result.append(" ", anchor);
  }
}

function finished(row, xhr) {
  const body = answer(xhr);
  const [outcome, title] = OUTCOMES[xhr.status] || ["failed", `Failed (${xhr.status})`];
  if (xhr.status === 201) {
    // The package page's URL has a Python project's normalized name (PEP 503).
    const [family, name] = body.family === "cran"
      ? ["cran", body.name]
      : ["pypi", body.name.toLowerCase().replace(/[-_.]+/g, "-")];
    const href = `${uploader.dataset.packages}/${family}/${encodeURIComponent(name)}`;
    show(row, outcome, `${title}: ${body.filename} is in the channel.`,
         {href, text: `See ${body.name}`});
  } else if (xhr.status === 200) {
    show(row, outcome, `${title}.`);
  } else {
    // "Too large: File too large: ..." says it twice: the server's detail alone does then.
    const detail = body.detail || body.title || xhr.statusText;
    const said = detail.toLowerCase().includes(title.toLowerCase());
    show(row, outcome, said ? detail : `${title}: ${detail}`);
  }
  // Sending the same file again helps after a refusal one can mend (a sign-in, a kind or
  // platform chosen), never after a conflict or a file too large.
  row.retry = !["accepted", "identical", "conflict", "too-large"].includes(outcome);
}

function progress(row, fraction, text) {
  row.bar.value = Math.round(fraction * 100);
  row.percent.textContent = text || `${row.bar.value}%`;
}

function send(row) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", uploader.dataset.url);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", uploader.dataset.csrf);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) {
        progress(row, event.loaded / event.total);
      }
    });
    xhr.addEventListener("load", () => {
      progress(row, 1, "sent");
      try {
        finished(row, xhr);
      } catch (error) {  // an answer not shaped as the server's own: say so, go on
        show(row, "failed", `Failed: an unexpected answer (${xhr.status})`);
        row.retry = true;
      }
      resolve();
    });
    for (const [event, message] of [["error", "the connection to the server broke off"],
                                    ["abort", "the upload was stopped"],
                                    ["timeout", "the server took too long"]]) {
      xhr.addEventListener(event, () => {
        show(row, "failed", `Failed: ${message}`);
        row.retry = true;
        resolve();
      });
    }
    xhr.send(formFor(row));
  });
}

const list = document.getElementById("upload-list");
const start = document.getElementById("upload-start");
const rows = [];
let busy = false;

function binaryFields(row) {
  const binary = row.kind.value === "cran_binary_package";
  row.element.querySelectorAll(".upload-binary").forEach((part) => { part.hidden = !binary; });
}

function add(file) {
  const element = document.getElementById("upload-row").content.firstElementChild.cloneNode(true);
  const row = {
    file, element, retry: true,
    kind: element.querySelector(".upload-kind"),
    platform: element.querySelector(".upload-platform"),
    rversion: element.querySelector(".upload-rversion"),
    bar: element.querySelector("progress"),
    percent: element.querySelector(".upload-percent"),
    result: element.querySelector(".upload-result"),
  };
  element.querySelector(".upload-name").textContent = file.name;
  element.querySelector(".upload-size").textContent = sizeText(file.size);
  row.bar.setAttribute("aria-label", `Upload of ${file.name}`);
  row.kind.value = guessKind(file.name);
  row.kind.addEventListener("change", () => binaryFields(row));
  binaryFields(row);
  list.append(element);
  rows.push(row);
  start.disabled = busy;
  start.textContent = "Upload";
}

async function uploadAll() {
  busy = true;
  start.disabled = true;
  for (const row of rows.filter((each) => each.retry)) {
    row.retry = false;
    show(row, "sending", "");
    progress(row, 0, "starting");
    await send(row);
  }
  busy = false;
  start.disabled = !rows.some((row) => row.retry);
  start.textContent = start.disabled ? "Upload" : "Try the refused files again";
}

if (uploader) {
  const picker = document.getElementById("upload-pick");
  const zone = document.getElementById("dropzone");
  uploader.hidden = false;
  picker.addEventListener("change", () => {
    Array.from(picker.files).forEach(add);
    picker.value = "";
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    Array.from(event.dataTransfer.files).forEach(add);
  });
  uploader.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!busy) {
      uploadAll();
    }
  });
}
