/*! Flagdesk "Report a problem" widget: plain JavaScript, no dependencies. See widget/README.md */
(() => {
"use strict";
const W = window, D = document;
if (W.Flagdesk && W.Flagdesk.version) return; // loaded twice
const VERSION = "1.0.0";
const REASONS = ["harmful_or_offensive", "inaccurate", "biased", "privacy", "unsafe_advice",
  "jailbreak_or_prompt_injection", "other"];
const ROLES = ["user", "assistant", "system", "tool"];
const script = D.currentScript, cfg = (script && script.dataset) || {};
const ENDPOINT = (cfg.api || new URL((script && script.src) || location.href, location.href).origin)
  .replace(/\/+$/, "") + "/api/v1/reports";
const KEY = cfg.projectKey || "", QKEY = "flagdesk:queue:" + ENDPOINT;

// r follows REASONS, o follows ROLES.
const T = {
  en: {
    launch: "Report a problem", intro: "Tell us what went wrong. A person reads every report.",
    reason: "What went wrong?",
    r: ["Harmful or offensive", "Inaccurate or made up", "Biased or unfair", "Private information",
      "Unsafe advice", "Jailbreak or prompt injection", "Something else"],
    desc: "What happened?",
    email: "E-mail (optional)", consent: "You may contact me about this report",
    sent: "Sent with your report", page: "Page", model: "Model", resp: "Response",
    acct: "Your account ID", meta: "App details", conv: "Include the conversation ({n} messages)",
    tech: "Also sent: language, browser, widget version.",
    o: ["You", "Assistant", "System", "Tool"], cancel: "Cancel", send: "Send report",
    sending: "Sending…", close: "Close", thanks: "Thank you, we received your report",
    ref: "Reference", status: "Follow its status", qt: "Saved on this device",
    q: "We couldn't reach the server. Your report is saved on this device and will be sent automatically.",
    eReason: "Choose what went wrong.", eDesc: "Describe the problem, or include the conversation.",
    eEmail: "Enter a valid e-mail address.",
    eConsent: "Tick the box, or leave the e-mail empty.",
    rejected: "Your report could not be accepted.",
  },
  es: {
    launch: "Informar de un problema", intro: "Cuéntanos qué salió mal. Una persona revisa cada informe.",
    reason: "¿Qué salió mal?",
    r: ["Dañino u ofensivo", "Inexacto o inventado", "Sesgado o injusto", "Información privada",
      "Consejo peligroso", "Jailbreak o inyección de instrucciones", "Otra cosa"],
    desc: "¿Qué pasó?",
    email: "Correo electrónico (opcional)", consent: "Acepto que me contactéis sobre este informe",
    sent: "Se envía con tu informe", page: "Página", model: "Modelo", resp: "Respuesta",
    acct: "Tu ID de cuenta", meta: "Datos de la aplicación",
    conv: "Incluir la conversación ({n} mensajes)",
    tech: "También se envía: idioma, navegador, versión del widget.",
    o: ["Tú", "Asistente", "Sistema", "Herramienta"], cancel: "Cancelar", send: "Enviar informe",
    sending: "Enviando…", close: "Cerrar", thanks: "Gracias, hemos recibido tu informe",
    ref: "Referencia", status: "Ver su estado", qt: "Guardado en este dispositivo",
    q: "No pudimos conectar con el servidor. Tu informe está guardado en este dispositivo y se enviará automáticamente.",
    eReason: "Elige qué salió mal.", eDesc: "Describe el problema o incluye la conversación.",
    eEmail: "Introduce un correo electrónico válido.",
    eConsent: "Marca la casilla o deja el correo vacío.",
    rejected: "No se pudo aceptar tu informe.",
  },
  de: {
    launch: "Problem melden", intro: "Sagen Sie uns, was schiefgelaufen ist. Jede Meldung liest ein Mensch.",
    reason: "Was ist schiefgelaufen?",
    r: ["Schädlich oder beleidigend", "Falsch oder erfunden", "Voreingenommen oder unfair",
      "Private Daten", "Gefährlicher Rat", "Jailbreak oder Prompt-Injection", "Etwas anderes"],
    desc: "Was ist passiert?",
    email: "E-Mail (optional)", consent: "Sie dürfen mich zu dieser Meldung kontaktieren",
    sent: "Wird mit Ihrer Meldung gesendet", page: "Seite", model: "Modell", resp: "Antwort",
    acct: "Ihre Konto-ID", meta: "App-Angaben", conv: "Unterhaltung mitsenden ({n} Nachrichten)",
    tech: "Außerdem: Sprache, Browser, Widget-Version.",
    o: ["Sie", "Assistent", "System", "Werkzeug"], cancel: "Abbrechen", send: "Meldung senden",
    sending: "Wird gesendet…", close: "Schließen", thanks: "Danke, Ihre Meldung ist angekommen",
    ref: "Referenz", status: "Status verfolgen", qt: "Auf diesem Gerät gespeichert",
    q: "Der Server war nicht erreichbar. Ihre Meldung ist auf diesem Gerät gespeichert und wird automatisch gesendet.",
    eReason: "Wählen Sie aus, was schiefgelaufen ist.",
    eDesc: "Beschreiben Sie das Problem oder senden Sie die Unterhaltung mit.",
    eEmail: "Geben Sie eine gültige E-Mail-Adresse ein.",
    eConsent: "Setzen Sie das Häkchen oder lassen Sie die E-Mail leer.",
    rejected: "Ihre Meldung wurde nicht angenommen.",
  },
  fr: {
    launch: "Signaler un problème", intro: "Dites-nous ce qui n’allait pas. Une personne lit chaque signalement.",
    reason: "Quel est le problème ?",
    r: ["Nuisible ou offensant", "Inexact ou inventé", "Biaisé ou injuste", "Données privées",
      "Conseil dangereux", "Jailbreak ou injection de prompt", "Autre chose"],
    desc: "Que s’est-il passé ?",
    email: "E-mail (facultatif)", consent: "Vous pouvez me contacter au sujet de ce signalement",
    sent: "Envoyé avec votre signalement", page: "Page", model: "Modèle", resp: "Réponse",
    acct: "Votre identifiant de compte", meta: "Détails de l’application",
    conv: "Joindre la conversation ({n} messages)",
    tech: "Aussi envoyés : langue, navigateur, version du widget.",
    o: ["Vous", "Assistant", "Système", "Outil"], cancel: "Annuler", send: "Envoyer le signalement",
    sending: "Envoi…", close: "Fermer", thanks: "Merci, nous avons reçu votre signalement",
    ref: "Référence", status: "Suivre son statut", qt: "Enregistré sur cet appareil",
    q: "Le serveur est injoignable. Votre signalement est enregistré sur cet appareil et sera envoyé automatiquement.",
    eReason: "Choisissez le type de problème.", eDesc: "Décrivez le problème ou joignez la conversation.",
    eEmail: "Saisissez une adresse e-mail valide.",
    eConsent: "Cochez la case ou laissez l’e-mail vide.",
    rejected: "Votre signalement n’a pas pu être accepté.",
  },
  ja: {
    launch: "問題を報告", intro: "何が問題だったかお知らせください。すべての報告を担当者が確認します。",
    reason: "どのような問題ですか？",
    r: ["有害・不快な内容", "不正確・事実と異なる", "偏り・不公平", "個人情報", "危険な助言",
      "脱獄・プロンプトインジェクション", "その他"],
    desc: "何が起きましたか？",
    email: "メールアドレス（任意）", consent: "この報告について連絡を受けることに同意します",
    sent: "報告と一緒に送信される情報", page: "ページ", model: "モデル", resp: "応答",
    acct: "アカウント ID", meta: "アプリの情報", conv: "会話を含める（{n} 件のメッセージ）",
    tech: "ほかに言語・ブラウザ・ウィジェットのバージョンを送信します。",
    o: ["あなた", "アシスタント", "システム", "ツール"], cancel: "キャンセル", send: "報告を送信",
    sending: "送信中…", close: "閉じる", thanks: "報告を受け付けました。ありがとうございます",
    ref: "受付番号", status: "対応状況を見る", qt: "この端末に保存しました",
    q: "サーバーに接続できませんでした。報告はこの端末に保存され、自動的に送信されます。",
    eReason: "問題の種類を選んでください。", eDesc: "問題を説明するか、会話を含めてください。",
    eEmail: "有効なメールアドレスを入力してください。",
    eConsent: "チェックを入れるか、メールアドレスを空にしてください。",
    rejected: "報告を受け付けられませんでした。",
  },
};

const lang = (tag) => {
  const l = String(tag || "").toLowerCase().split(/[-_]/)[0];
  return T[l] ? l : "";
};
const pageLang = () => D.documentElement.lang || navigator.language || "";
const uiLang = (o) => lang(o.locale) || lang(cfg.locale) || lang(pageLang()) || "en";

const h = (tag, attrs, ...kids) => {
  const e = D.createElement(tag);
  for (const k in attrs) {
    const v = attrs[k];
    if (v == null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...kids.filter((x) => x != null && x !== false));
  return e;
};
const svg = (d) => {
  const n = "http://www.w3.org/2000/svg", s = D.createElementNS(n, "svg"), p = D.createElementNS(n, "path");
  s.setAttribute("viewBox", "0 0 24 24");
  s.setAttribute("aria-hidden", "true");
  p.setAttribute("d", d);
  s.append(p);
  return s;
};
const clean = (v, max) =>
  (v == null || typeof v === "object" ? null : String(v).replace(/\0/g, "").trim().slice(0, max) || null);
const uuid = () => {
  const c = W.crypto;
  if (c.randomUUID) return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  return [...b].map((n, i) => ([4, 6, 8, 10].includes(i) ? "-" : "") + n.toString(16).padStart(2, "0")).join("");
};
const listeners = {};
const emit = (name, detail) => (listeners[name] || []).forEach((fn) => {
  try { fn(detail); } catch (e) { console.error(e); }
});

const context = (o) => {
  let url = null;
  try {
    const u = new URL(o.pageUrl || location.href, location.href);
    if (!(o.includeQuery != null ? o.includeQuery === true : cfg.includeQuery === "true")) u.search = "";
    u.hash = ""; // fragments may carry tokens
    if (/^https?:$/.test(u.protocol)) url = u.href.length <= 2048 ? u.href : u.origin + u.pathname.slice(0, 1024);
  } catch (e) { /* no URL */ }
  const meta = {}, loc = pageLang().replace(/_/g, "-");
  for (const [k, v] of Object.entries(o.metadata && typeof o.metadata === "object" ? o.metadata : {}).slice(0, 20)) {
    const key = clean(k, 64);
    if (key && (v === null || typeof v === "boolean" || Number.isFinite(v))) meta[key] = v;
    else if (key && typeof v === "string") meta[key] = v.replace(/\0/g, "").slice(0, 500);
  }
  return {
    reason: REASONS.includes(o.reason) ? o.reason : null,
    description: clean(o.description, 5000) || "",
    conversation: (Array.isArray(o.conversation) ? o.conversation : [])
      .map((t) => t && ROLES.includes(t.role) && { role: t.role, content: clean(t.content, 8000) })
      .filter((t) => t && t.content).slice(-20),
    model: clean(o.model, 200),
    response_id: clean(o.responseId, 200),
    end_user_id: clean(o.endUserId, 256),
    metadata: meta,
    page_url: url,
    locale: /^[a-z]{2,8}(-[a-z0-9]{1,8}){0,4}$/i.test(loc) && loc.length < 36 ? loc : null,
    user_agent: clean(navigator.userAgent, 512),
    widget_version: VERSION,
  };
};

// The outbox: written before sending, left only on a 2xx or a final 4xx. mem: if storage fails.
let mem = null, busy = false, timer = 0;
const load = () => {
  if (!mem) {
    try {
      const q = JSON.parse(W.localStorage.getItem(QKEY));
      return Array.isArray(q) ? q : [];
    } catch (e) { mem = []; }
  }
  return mem.slice();
};
const save = (q) => {
  if (!mem) {
    try {
      return q.length ? W.localStorage.setItem(QKEY, JSON.stringify(q)) : W.localStorage.removeItem(QKEY);
    } catch (e) { /* off or full */ }
  }
  mem = q;
};
const update = (key, fn) => save(load().flatMap((e) => (e.key !== key ? [e] : fn ? [fn(e)] : [])));

const send = async (e) => {
  const ctl = new AbortController(), t = setTimeout(() => ctl.abort(), 2e4);
  let res, data;
  try {
    res = await fetch(e.url, {
      method: "POST", credentials: "omit", referrerPolicy: "no-referrer", signal: ctl.signal,
      headers: { "Content-Type": "application/json", "X-Project-Key": e.pk, "Idempotency-Key": e.key },
      body: JSON.stringify(e.body),
    });
    data = await res.json().catch(() => null);
  } catch (x) {
    return { retry: 1 };
  } finally { clearTimeout(t); }
  const s = res.status, after = res.headers.get("Retry-After");
  data = data || {};
  if (res.ok) return { ok: 1, data };
  if (s === 408 || s === 429 || s > 499) {
    return { retry: 1, after: /^\d+$/.test(after) ? Math.min(after, 3600) * 1e3 : s === 429 ? 3e4 : null };
  }
  return { status: s, error: data.error || {} };
};

const settle = (e, r) => {
  const mine = e.key === ui.key;
  if (r.retry) {
    update(e.key, (x) => {
      x.n = (x.n || 0) + 1;
      x.next = Date.now() + (r.after != null ? r.after : Math.min(3e5, 500 * 2 ** x.n) * (0.8 + Math.random() * 0.4));
      return x;
    });
    if (mine && ui.mode === "form") showQueued();
    if (!e.n) emit("queued", { idempotencyKey: e.key });
    return;
  }
  update(e.key);
  if (r.ok) {
    const d = r.data, receipt = {
      id: d.id, status: d.status, receivedAt: d.received_at, statusUrl: d.status_url,
      statusToken: d.status_token, statusPageUrl: d.status_page_url, idempotencyKey: e.key,
    };
    if (mine) showDone(receipt);
    emit("submitted", receipt);
  } else {
    if (mine) showRejected(r);
    emit("error", { status: r.status, error: r.error, idempotencyKey: e.key });
  }
};

const schedule = () => {
  const q = load();
  clearTimeout(timer);
  if (q.length) timer = setTimeout(flush, Math.min(Math.max(0, Math.min(...q.map((e) => e.next)) - Date.now()), 36e5));
};
async function flush(now) {
  if (busy) return;
  busy = true;
  try {
    for (const e of load()) {
      if (Date.now() - e.at > 6048e5) update(e.key); // a week old
      else if (now === true || e.next <= Date.now()) {
        update(e.key, (x) => ((x.next = Date.now() + 6e4), x)); // a lease while in flight
        settle(e, await send(e));
      }
    }
  } finally {
    busy = false;
    schedule();
  }
}

const host = h("flagdesk-widget", {
  "data-position": cfg.position === "bottom-left" ? "bottom-left" : "bottom-right",
  "data-theme": /^(light|dark)$/.test(cfg.theme) ? cfg.theme : null,
});
const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(cfg.color || "");
if (hex) {
  const x = hex[1].length === 3 ? hex[1].replace(/./g, "$&$&") : hex[1];
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(x.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  const L = 0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05;
  host.style.setProperty("--flagdesk-accent", "#" + x);
  host.style.setProperty("--flagdesk-accent-text", 1.05 / L >= L / 0.05 ? "#fff" : "#111");
}
// Closed: host scripts cannot read the form. data-test-open-shadow is for tests only.
const root = host.attachShadow({ mode: cfg.testOpenShadow != null ? "open" : "closed" });
if (cfg.nonce || !root.adoptedStyleSheets) {
  root.append(h("style", { nonce: cfg.nonce }, CSS_TEXT()));
} else {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS_TEXT());
  root.adoptedStyleSheets = [sheet];
}

const trigger = clean(cfg.trigger, 500);
let launcher = null;
if (KEY && (cfg.button ? cfg.button !== "false" : !trigger)) {
  launcher = h("button", { type: "button", class: "fd launch", "aria-haspopup": "dialog", onclick: () => open() },
    svg("M5 21V4m0 0h11l-2 4 2 4H5"), h("span", { text: cfg.label || T[uiLang({})].launch }));
  root.append(launcher);
} else host.setAttribute("data-launcher", "none");

const ui = { key: null, mode: "form", sending: false };
let dlg = null, els = {};

const build = () => {
  const t = ui.t, E = (n) => h("p", { class: "ferr", id: "fd-e-" + n });
  els = { reason: [] };
  if (dlg) dlg.remove();
  dlg = h("dialog", {
    class: "fd dlg", role: "dialog", "aria-modal": "true", "aria-labelledby": "fd-title", lang: ui.lang,
    oncancel: (e) => { e.preventDefault(); close(); },
    onkeydown: (e) => {
      if (e.key === "Escape" && !e.isComposing) { e.preventDefault(); close(); } else if (e.key === "Tab") trap(e);
    },
  },
  els.form = h("form", { novalidate: true, onsubmit: (e) => { e.preventDefault(); ui.mode === "form" ? submit() : close(); } },
    h("div", { class: "hd" },
      els.title = h("h2", { id: "fd-title", tabindex: "-1" }),
      h("button", { type: "button", class: "x", "aria-label": t.close, onclick: () => close() }, svg("M6 6l12 12M18 6L6 18"))),
    h("div", { class: "bd" },
      els.alert = h("p", { class: "sr", role: "alert" }),
      els.live = h("p", { class: "sr", role: "status" }),
      els.fpanel = h("div", {},
        h("p", { class: "intro", text: t.intro }),
        h("fieldset", { "aria-describedby": "fd-e-reason" },
          h("legend", { text: t.reason }),
          h("div", { class: "chips" }, ...REASONS.map((v, i) => h("label", { class: "chip" },
            els.reason[i] = h("input", { type: "radio", name: "reason", value: v, required: true, class: "sr" }),
            h("span", { text: t.r[i] })))),
          els.eReason = E("reason")),
        h("div", { class: "field" },
          h("label", { for: "fd-desc", text: t.desc }),
          els.desc = h("textarea", { id: "fd-desc", rows: "3", maxlength: "5000", "aria-describedby": "fd-e-desc" }),
          els.eDesc = E("desc")),
        h("div", { class: "field" },
          h("label", { for: "fd-email", text: t.email }),
          els.email = h("input", { id: "fd-email", type: "email", autocomplete: "email", maxlength: "254", "aria-describedby": "fd-e-email" }),
          els.eEmail = E("email"),
          h("label", { class: "check" },
            els.consent = h("input", { type: "checkbox", "aria-describedby": "fd-e-consent" }),
            h("span", { text: t.consent })),
          els.eConsent = E("consent")),
        h("section", { class: "ctx", "aria-labelledby": "fd-sent" },
          h("h3", { id: "fd-sent", text: t.sent }),
          els.facts = h("dl"),
          els.convBox = h("div", {},
            h("label", { class: "check" },
              els.conv = h("input", { type: "checkbox", checked: true, onchange: () => { els.turns.hidden = !els.conv.checked; } }),
              els.convL = h("span", { id: "fd-conv" })),
            els.turns = h("div", { class: "turns", tabindex: "0", role: "region", "aria-labelledby": "fd-conv" })),
          h("p", { class: "hint", text: t.tech }))),
      els.rpanel = h("div", { class: "rp" })),
    h("div", { class: "ft" },
      els.cancel = h("button", { type: "button", class: "btn", onclick: () => close(), text: t.cancel }),
      els.send = h("button", { type: "submit", class: "btn pri" })))
  );
  root.append(dlg);
};

const trap = (e) => {
  const f = [...dlg.querySelectorAll("button,input,textarea,a[href],[tabindex='0']")]
    .filter((x) => x.getClientRects().length);
  const a = root.activeElement, first = f[0], last = f[f.length - 1];
  if (e.shiftKey ? a === first || !dlg.contains(a) : a === last) {
    e.preventDefault();
    (e.shiftKey ? last : first).focus();
  }
};

const render = () => {
  const t = ui.t, c = ui.ctx, n = c.conversation.length;
  const fact = (dt, dd) => dd && els.facts.append(h("dt", { text: dt }), h("dd", { text: dd }));
  els.facts.replaceChildren();
  fact(t.page, c.page_url);
  fact(t.model, c.model);
  fact(t.resp, c.response_id);
  fact(t.acct, c.end_user_id);
  fact(t.meta, Object.entries(c.metadata).map(([k, v]) => `${k}: ${v}`).join(", ").slice(0, 300));
  els.convBox.hidden = !n;
  els.convL.textContent = t.conv.replace("{n}", n);
  els.turns.replaceChildren(...c.conversation.map((x) => h("p", {},
    h("b", { text: t.o[ROLES.indexOf(x.role)] + ": " }), x.content.length > 600 ? x.content.slice(0, 600) + "…" : x.content)));
};

const setErr = (el, field, msg) => {
  el.textContent = msg;
  [].concat(field).forEach((f) => (msg ? f.setAttribute("aria-invalid", "true") : f.removeAttribute("aria-invalid")));
  return msg && [msg, [].concat(field)[0]];
};
const validate = () => {
  const t = ui.t, email = els.email.value.trim();
  const errs = [
    setErr(els.eReason, els.reason, els.reason.some((x) => x.checked) ? "" : t.eReason),
    setErr(els.eDesc, els.desc, els.desc.value.trim() || (els.conv.checked && ui.ctx.conversation.length) ? "" : t.eDesc),
    setErr(els.eEmail, els.email, !email || /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) ? "" : t.eEmail),
    setErr(els.eConsent, els.consent, !email || els.consent.checked ? "" : t.eConsent),
  ].filter(Boolean);
  els.alert.className = "sr";
  els.alert.textContent = errs.map((x) => x[0]).join(" ");
  if (errs.length) errs[0][1].focus();
  return !errs.length;
};

const setMode = (mode) => {
  const form = (ui.mode = mode) === "form";
  els.fpanel.hidden = els.cancel.hidden = !form;
  els.rpanel.hidden = form;
  if (form) els.title.textContent = ui.t.launch;
  els.send.textContent = form ? (ui.sending ? ui.t.sending : ui.t.send) : ui.t.close;
  els.send.setAttribute("aria-disabled", ui.sending);
};

async function submit() {
  if (ui.sending || !validate()) return;
  const c = ui.ctx, email = els.email.value.trim(), body = {
    reason: els.reason.find((x) => x.checked).value,
    description: els.desc.value.replace(/\0/g, "").trim(),
  };
  if (els.conv.checked && c.conversation.length) body.conversation = c.conversation;
  for (const k of ["model", "response_id", "page_url", "locale", "user_agent", "widget_version", "end_user_id"]) {
    if (c[k]) body[k] = c[k];
  }
  if (Object.keys(c.metadata).length) body.metadata = c.metadata;
  if (email && els.consent.checked) { body.contact_email = email; body.contact_consent = true; }
  const e = { key: uuid(), url: ENDPOINT, pk: KEY, body, at: Date.now(), n: 0, next: Date.now() + 6e4 };
  save(load().concat(e).slice(-50));
  ui.key = e.key;
  ui.sending = true;
  setMode("form");
  els.live.textContent = ui.t.sending;
  settle(e, await send(e));
  ui.sending = false;
  if (ui.mode === "form") setMode("form");
  schedule();
}

const result = (title, ...kids) => {
  ui.sending = false;
  els.form.reset(); // sending the same draft again would make a second report
  els.alert.textContent = "";
  els.rpanel.replaceChildren(...kids);
  setMode("result");
  els.title.textContent = els.live.textContent = title;
  if (dlg.open) els.title.focus();
};
function showDone(r) {
  const t = ui.t;
  ui.key = null;
  result(t.thanks, h("p", {}, t.ref + ": ", h("code", { text: r.id || "" })),
    /^https?:\/\//.test(r.statusPageUrl) &&
      h("p", {}, h("a", { href: r.statusPageUrl, target: "_blank", rel: "noopener noreferrer", text: t.status })));
}
function showQueued() {
  result(ui.t.qt, h("p", { text: ui.t.q }));
}
function showRejected(r) {
  ui.sending = false;
  ui.key = null;
  setMode("form");
  els.alert.className = "msg";
  els.alert.textContent = ui.t.rejected + (r.error.message ? " " + r.error.message : "");
}

function open(opts, opener) {
  const o = opts && typeof opts === "object" ? opts : {};
  ui.lang = uiLang(o);
  ui.t = T[ui.lang];
  ui.ctx = context(o);
  if (!dlg || dlg.lang !== ui.lang) build();
  if (!host.isConnected) mount(); // opened before the page's body was parsed
  if (!dlg.open) {
    const a = opener || D.activeElement;
    ui.opener = a === host ? launcher : a;
  }
  if (ui.mode !== "form" || ui.sending) { ui.key = null; ui.sending = false; els.form.reset(); }
  [els.alert, els.eReason, els.eDesc, els.eEmail, els.eConsent].forEach((x) => { x.textContent = ""; });
  dlg.querySelectorAll("[aria-invalid]").forEach((x) => x.removeAttribute("aria-invalid"));
  if (ui.ctx.reason) els.reason[REASONS.indexOf(ui.ctx.reason)].checked = true;
  if (ui.ctx.description && !els.desc.value) els.desc.value = ui.ctx.description;
  els.conv.checked = true;
  els.turns.hidden = false;
  render();
  setMode("form");
  if (!dlg.open) dlg.showModal();
  (ui.ctx.reason ? els.desc : els.reason.find((x) => x.checked) || els.reason[0]).focus();
  emit("open", {});
}
function close() {
  if (!dlg || !dlg.open) return;
  dlg.close();
  if (ui.mode !== "form") { ui.key = null; setMode("form"); }
  const o = ui.opener;
  ui.opener = null;
  if (o && o.isConnected && o.focus) o.focus();
  emit("close", {});
}

if (trigger) {
  D.addEventListener("click", (e) => {
    let t = null;
    try { t = e.target instanceof Element && e.target.closest(trigger); } catch (x) { return; }
    if (t) { e.preventDefault(); open({}, t); }
  });
}
const mount = () => (D.body || D.documentElement).append(host);
if (D.body) mount(); else D.addEventListener("DOMContentLoaded", mount);
W.addEventListener("online", () => flush(true));
if (!KEY) console.warn("Flagdesk: the script tag needs data-project-key.");
if (load().length) setTimeout(() => flush(true), 0); // left by an earlier visit

const off = (name, fn) => { listeners[name] = (listeners[name] || []).filter((f) => f !== fn); };
W.Flagdesk = Object.freeze({
  version: VERSION,
  open: (opts) => open(opts),
  close: () => close(),
  on(name, fn) {
    (listeners[name] = listeners[name] || []).push(fn);
    return () => off(name, fn);
  },
  off,
});


// Adopted, not a <style> element: nothing for a style-src policy to block.
function CSS_TEXT() {
  const dark = "--bg:#1c1f26;--fg:#eceef3;--mu:#b4bac6;--ln:#4a5163;--sf:#262a33;--er:#ffa49c;--ring:#aab6ff;--sh:0 20px 50px rgba(0,0,0,.6);color-scheme:dark;";
  return `
:host{all:initial!important;position:fixed!important;z-index:2147483000!important;bottom:20px!important;right:20px!important;display:block!important}
:host([data-position=bottom-left]){left:20px!important;right:auto!important}
.fd{--a:var(--flagdesk-accent,#3346c4);--at:var(--flagdesk-accent-text,#fff);--r:var(--flagdesk-radius,14px);--bg:#fff;--fg:#1d2330;--mu:#535c6d;--ln:#c3c8d2;--sf:#f3f4f7;--er:#b3261e;--ring:var(--a);--sh:0 20px 50px rgba(16,24,40,.25);color-scheme:light;font:15px/1.45 var(--flagdesk-font,system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif);color:var(--fg);text-align:start}
@media (prefers-color-scheme:dark){:host(:not([data-theme=light])) .fd{${dark}}}
:host([data-theme=dark]) .fd{${dark}}
:where(.fd *){box-sizing:border-box;font:inherit;color:inherit}
[hidden]{display:none!important}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap;opacity:0}
button{cursor:pointer;margin:0}
:focus-visible{outline:3px solid var(--ring);outline-offset:2px}
svg{width:18px;height:18px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round;flex:none}
.launch{display:inline-flex;align-items:center;gap:8px;min-height:44px;padding:10px 18px 10px 14px;border:1px solid rgba(255,255,255,.25);border-radius:999px;background:var(--a);color:var(--at);font-weight:600;font-size:14px;box-shadow:0 6px 20px rgba(16,24,40,.22)}
.dlg{position:fixed;inset:0;margin:auto;width:min(460px,calc(100vw - 24px));max-height:min(860px,calc(100dvh - 24px));padding:0;border:1px solid var(--ln);border-radius:var(--r);background:var(--bg);color:var(--fg);box-shadow:var(--sh);overflow:hidden}
.dlg[open]{display:flex}
.dlg::backdrop{background:rgba(15,18,26,.5)}
form{display:flex;flex-direction:column;width:100%;max-height:inherit;margin:0}
.hd{display:flex;align-items:center;gap:12px;padding:16px 16px 4px 20px}
h2{flex:1;margin:0;font-size:18px;font-weight:650;line-height:1.3}
.x{display:grid;place-items:center;width:36px;height:36px;border:0;border-radius:8px;background:none;color:var(--mu)}
.x:hover{background:var(--sf);color:var(--fg)}
.bd{flex:1;overflow:auto;padding:4px 20px 8px}
.intro{margin:0 0 10px;color:var(--mu)}
.msg{margin:0 0 12px;padding:10px 12px;border-radius:8px;border:1px solid var(--er);color:var(--er);font-weight:550}
fieldset{margin:0 0 12px;padding:0;border:0;min-width:0}
legend,label,h3{display:block;padding:0;margin:0 0 6px;font-weight:600;font-size:14px}
.chips{display:flex;flex-wrap:wrap;gap:6px}
.chip{margin:0;font-weight:500}
.chip span{display:inline-block;padding:5px 11px;border:1px solid var(--ln);border-radius:999px;background:var(--bg);font-size:14px;line-height:1.3;cursor:pointer}
.chip span:hover,.btn:not(.pri):hover{border-color:var(--fg)}
.chip input:checked+span{background:var(--a);border-color:var(--a);color:var(--at)}
.chip input:focus-visible+span{outline:3px solid var(--ring);outline-offset:2px}
.field{margin:0 0 12px}
textarea,input[type=email]{display:block;width:100%;margin:0;padding:8px 10px;border:1px solid var(--ln);border-radius:8px;background:var(--bg);color:var(--fg);resize:vertical}
textarea{min-height:68px}
textarea:focus-visible,input[type=email]:focus-visible{outline-offset:0;border-color:var(--ring)}
[aria-invalid=true]{border-color:var(--er)}
.check{display:flex;gap:8px;align-items:flex-start;margin:8px 0 0;font-weight:500}
.check input{width:18px;height:18px;margin:2px 0 0;flex:none;accent-color:var(--a)}
.hint{margin:6px 0 0;color:var(--mu);font-size:13px}
.ferr:empty{display:none}
.ferr{margin:6px 0 0;color:var(--er);font-size:13px;font-weight:550}
.ctx{margin:4px 0 8px;padding:10px 14px;border-radius:10px;background:var(--sf);font-size:13px}
.ctx h3{font-size:13px;color:var(--mu)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
dt{color:var(--mu)}
dd{margin:0;overflow-wrap:anywhere}
.ctx .check{font-size:13px}
.turns{margin:6px 0 0;max-height:104px;overflow:auto;padding:8px 10px;border:1px solid var(--ln);border-radius:8px;background:var(--bg)}
.turns p{margin:0 0 4px;white-space:pre-wrap;overflow-wrap:anywhere}
b{font-weight:650}
.rp p{margin:0 0 12px}
code{font-family:ui-monospace,Menlo,Consolas,monospace;padding:1px 6px;border-radius:6px;background:var(--sf)}
a{color:inherit;text-decoration:underline;text-underline-offset:2px;font-weight:600}
.ft{display:flex;justify-content:flex-end;gap:8px;padding:12px 20px 16px;border-top:1px solid var(--ln)}
.btn{min-height:40px;padding:8px 16px;border:1px solid var(--ln);border-radius:8px;background:var(--bg);color:var(--fg);font-weight:600}
.pri{background:var(--a);border-color:var(--a);color:var(--at)}
.pri:hover,.launch:hover{background:var(--a);filter:brightness(1.08)}
.pri[aria-disabled=true]{opacity:.7;cursor:progress}
@media (prefers-reduced-motion:no-preference){
.launch{transition:transform .15s ease,filter .15s ease}
.launch:hover{transform:translateY(-1px)}
.dlg[open]{animation:fd-in .18s ease-out}
}
@keyframes fd-in{from{opacity:0;transform:translateY(8px) scale(.98)}to{opacity:1;transform:none}}
@media (max-width:480px){.dlg{width:100vw;max-height:92dvh;margin:auto 0 0;border-radius:var(--r) var(--r) 0 0}}
`;
}
})();
