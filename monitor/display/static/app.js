/*
 * Gym wall display: paints the stations that the display service streams.
 *
 * Data flow: EventSource("/events") delivers a "snapshot" (every station, with
 * its sparkline history) on every (re)connection, then "update" events with
 * only the stations that changed. The page keeps a model (one object per
 * station) and a tile per station that is built once and then updated in place.
 *
 * Everything that came from MQTT is untrusted text: it only ever reaches the
 * page through textContent, dataset or setAttribute on attributes that are not
 * URLs or handlers. Nothing here parses HTML.
 *
 * Acknowledging needs a staff login (staff.js): the page sends the ack, the
 * server publishes it with the staff member's name, and every screen shows
 * "sent, waiting for the station" until the station confirms (the alert
 * leaves, and "acknowledged by NAME at TIME" appears) or the server reports
 * that it did not confirm in time.
 *
 * Each tile names who is checked in there (the name the gym gave the athlete,
 * else "guest") and since when. Logged-in staff get a "Check in" button on
 * each tile: it lists the named athletes (fetched for staff only, never part
 * of the public stream) and checks the one picked in, or checks out whoever
 * is in; the station's own "athlete" message then changes every screen.
 */
"use strict";

(function () {
  const TREMOR_LABEL = {
    none: "NO TREMOR", normal: "NORMAL", elevated: "ELEVATED", high: "HIGH", nodata: "NO DATA",
  };
  const ALERT_LABEL = { info: "INFO", caution: "CAUTION", warning: "WARNING", urgent: "URGENT" };
  // Faults of the station itself (sensor.fault, sensor.overrun): not the athlete.
  const EQUIPMENT_LABEL = "SENSOR";
  const ALERT_RANK = { info: 0, caution: 1, warning: 2, urgent: 3 };
  const STATE_LABEL = {
    idle: "Idle", reps: "Reps", hold: "Static hold", rest: "Resting", recovery: "Recovery",
  };
  const RED_FLAG_ASK = "Ask the athlete about chest pain, confusion, severe light-headedness, " +
    "fainting or dark urine. If any: seek medical advice promptly.";
  const TILE_ASPECT = 1.25;   // width / height that tiles look best at
  const MAX_TALL = 1.1;       // never taller than this times their width
  const MIN_TILE_W = 120;     // px; below this the board scrolls instead
  const MIN_TILE_H = 90;
  const ALERTS_PER_TILE = 2;
  const MAX_BANNERS = 3;
  const MAX_ACKS_SHOWN = 3;
  const ACKS_SHOWN_S = 1800;  // acknowledgements stay listed for half an hour
  const WATCHDOG_MS = 40000;  // the server pings every 15 s
  const SVG_NS = "http://www.w3.org/2000/svg";

  const dom = {
    board: document.getElementById("board"),
    empty: document.getElementById("empty"),
    banners: document.getElementById("banners"),
    summary: document.getElementById("summary"),
    link: document.getElementById("link"),
    sound: document.getElementById("sound"),
    clock: document.getElementById("clock"),
    acks: document.getElementById("acks"),
    boardFull: document.getElementById("board-full"),
    staffName: document.getElementById("staff-name"),
    staffLogin: document.getElementById("staff-login"),
    staffLogout: document.getElementById("staff-logout"),
    loginDialog: document.getElementById("login-dialog"),
    loginForm: document.getElementById("login-form"),
    loginWhy: document.getElementById("login-why"),
    loginError: document.getElementById("login-error"),
    loginCancel: document.getElementById("login-cancel"),
    alertDialog: document.getElementById("alert-dialog"),
    checkinDialog: document.getElementById("checkin-dialog"),
    checkinStation: document.getElementById("checkin-station"),
    checkinNow: document.getElementById("checkin-now"),
    checkinFilter: document.getElementById("checkin-filter"),
    checkinList: document.getElementById("checkin-list"),
    checkinError: document.getElementById("checkin-error"),
    checkinCheckout: document.getElementById("checkin-checkout"),
    checkinClose: document.getElementById("checkin-close"),
  };

  const model = {
    stations: new Map(),  // id -> the server's view of the station
    offset: 0,            // server clock minus this screen's clock, seconds
    staleAfter: 30,
    historyS: 300,
    linkUp: false,        // display service <-> broker
    streamUp: false,      // this page <-> display service
    acks: [],             // acknowledgements the stations confirmed, newest first
    refused: 0,           // messages from stations the board had no room for
    grades: null,         // the thresholds stations apply unless their session says others
  };
  const tiles = new Map();       // id -> {root, parts...}
  const pendingAcks = new Set(); // "station\u0000alert" being sent
  const failedAcks = new Map();  // same key -> error text

  // ------------------------------------------------------------------ helpers

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  // Writing only when the text differs keeps the DOM (and repaints) quiet.
  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function setAttr(node, name, value) {
    if (node.getAttribute(name) !== value) node.setAttribute(name, value);
  }

  // Replace the classes that start with `prefix` by `prefix + value`.
  function setVariant(node, prefix, value) {
    for (const cls of Array.from(node.classList)) {
      if (cls.startsWith(prefix) && cls !== prefix + value) node.classList.remove(cls);
    }
    if (value !== null && value !== undefined) node.classList.add(prefix + value);
  }

  function isNum(v) { return typeof v === "number" && Number.isFinite(v); }

  function serverNow() { return Date.now() / 1000 + model.offset; }

  function fmtAgo(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  // One formatter for the page: toLocaleTimeString builds a new one per call,
  // which hundreds of tiles repainting several times a second notice.
  const TIME_FORMAT = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });

  function fmtTime(ts) {
    return TIME_FORMAT.format(new Date(ts * 1000));
  }

  function isEquipment(alert) { return alert.kind === "equipment"; }

  // Athletes first, worst first; the equipment's own faults after them.
  function alertOrder(a, b) {
    return (isEquipment(a) - isEquipment(b)) || (ALERT_RANK[b.level] - ALERT_RANK[a.level]) ||
      ((b.raised_ts || 0) - (a.raised_ts || 0));
  }

  function alertLabel(alert) {
    return isEquipment(alert) ? EQUIPMENT_LABEL : ALERT_LABEL[alert.level];
  }

  function alertVariant(alert) { return isEquipment(alert) ? "equipment" : alert.level; }

  // Why an alert is not vouched for right now, or "".
  function unconfirmedWhy(st, alert) {
    if (alert.confirmed !== false) return "";
    if (st.status === "offline") return "station offline: not confirmed";
    if (st.stale) return "no data from the station: not confirmed";
    return "station restarted: waiting for it to confirm";
  }

  function fmtRatio(r) { return (r < 10 ? r.toFixed(1) : Math.round(r).toString()) + "x"; }

  function compareIds(a, b) { return a.localeCompare(b, undefined, { numeric: true }); }

  function ackKey(stationId, alertId) { return stationId + "\u0000" + alertId; }

  /*
   * Keyed list update: `items` in order, `key(item)` a string, `create(item)`
   * a new node, `update(node, item)` paints it. Existing nodes are kept (a
   * button under a finger stays the same button), moved if needed, and those
   * whose key vanished are removed.
   */
  function reconcile(container, items, key, create, update) {
    const existing = new Map();
    for (const child of Array.from(container.children)) existing.set(child.dataset.key, child);
    let prev = null;
    for (const item of items) {
      const k = key(item);
      let node = existing.get(k);
      if (node) existing.delete(k);
      else { node = create(item); node.dataset.key = k; }
      update(node, item);
      const want = prev ? prev.nextSibling : container.firstChild;
      if (node !== want) container.insertBefore(node, want);
      prev = node;
    }
    for (const node of existing.values()) node.remove();
  }

  // ------------------------------------------------------------------ model

  function applySnapshot(data) {
    model.offset = data.now - Date.now() / 1000;
    model.staleAfter = data.stale_after;
    model.historyS = data.history_s;
    model.grades = data.grades || null;
    model.linkUp = data.link_up;
    model.acks = data.acks || [];
    model.refused = data.refused || 0;
    const seen = new Set();
    for (const st of data.stations) {
      model.stations.set(st.id, st);
      seen.add(st.id);
    }
    for (const id of Array.from(model.stations.keys())) {
      if (!seen.has(id)) model.stations.delete(id);
    }
    for (const [id, tile] of tiles) {
      if (!seen.has(id)) { tile.root.remove(); tiles.delete(id); }
    }
    // A snapshot repaints everything now: it is rare (a (re)connection) and the
    // page should not show the stations it had before for a frame longer.
    for (const st of data.stations) dirty.add(st.id);
    paintFrame();
  }

  function applyUpdate(data) {
    model.offset = data.now - Date.now() / 1000;
    model.linkUp = data.link_up;
    if (data.acks) model.acks = data.acks;
    if (typeof data.refused === "number") model.refused = data.refused;
    for (const id of data.removed || []) {
      model.stations.delete(id);
      const tile = tiles.get(id);
      if (tile) { tile.root.remove(); tiles.delete(id); }
    }
    for (const fresh of data.stations) {
      const old = model.stations.get(fresh.id);
      fresh.spark = mergeSpark(old ? old.spark : [], fresh.spark_tail || []);
      delete fresh.spark_tail;
      model.stations.set(fresh.id, fresh);
      dirty.add(fresh.id);
    }
    askFrame();
  }

  /*
   * Painting follows the screen, not the stream: an update only changes the
   * model and marks its stations; the next animation frame repaints those
   * tiles once each (however many updates came since) and the board-wide
   * parts (banners, summary) once. With hundreds of stations the page thus
   * does one frame's work per frame instead of one per message, and never
   * falls behind the stream. Alerts ride in the same frame as everything
   * else: at most one frame after their update arrived. A page the browser
   * does not animate (a hidden tab) still paints, on a timer, so its banners
   * and beeps are not held back.
   */
  const dirty = new Set();  // stations whose tiles the next frame repaints
  let frameAsked = false;
  let frameTimer = 0;
  const FRAME_FALLBACK_MS = 250;

  function askFrame() {
    if (frameAsked) return;
    frameAsked = true;
    requestAnimationFrame(paintFrame);
    frameTimer = setTimeout(paintFrame, FRAME_FALLBACK_MS);
  }

  function paintFrame() {
    frameAsked = false;
    clearTimeout(frameTimer);
    for (const id of dirty) {
      const st = model.stations.get(id);
      if (st) renderTile(st);
    }
    dirty.clear();
    afterChange();
  }

  // Points are [bucket start, ratio, rms]; the tail may repeat the last bucket.
  function mergeSpark(history, tail) {
    const out = history.slice();
    for (const point of tail) {
      const last = out[out.length - 1];
      if (last && last[0] === point[0]) out[out.length - 1] = point;
      else if (!last || point[0] > last[0]) out.push(point);
    }
    const cutoff = serverNow() - model.historyS;
    while (out.length && out[0][0] < cutoff) out.shift();
    return out;
  }

  function afterChange() {
    dom.empty.hidden = tiles.size > 0;
    if (dom.checkinDialog.open) paintPicker();
    renderBanners();
    renderAcks();
    renderSummary();
    renderLink();
    fitGrid();
  }

  // ------------------------------------------------------------------ tiles

  function buildTile(id) {
    const t = { root: el("article", "tile") };
    t.root.dataset.station = id;
    const head = el("header", "tile-head");
    t.name = el("h2", "name");
    t.badge = el("span", "badge");
    head.append(t.name, t.badge);

    const who = el("div", "tile-who");
    t.who = el("span", "who");
    t.pick = el("button", "pick", "Check in");
    t.pick.type = "button";
    t.pick.hidden = true;
    t.pick.addEventListener("click", () => openPicker(id));
    who.append(t.who, t.pick);

    const stateRow = el("div", "tile-state");
    t.state = el("span", "state");
    t.sensor = el("span", "sensor");
    stateRow.append(t.state, t.sensor);

    const main = el("div", "tile-main");
    t.levelBox = el("div", "level-box");
    t.ratio = el("span", "ratio");
    t.level = el("span", "level-label");
    t.levelBox.append(t.ratio, t.level);
    const figures = el("div", "figures");
    t.hz = el("span", "hz");
    t.rms = el("span", "rms");
    figures.append(t.hz, t.rms);
    main.append(t.levelBox, figures);

    t.spark = svg("svg", { class: "spark", viewBox: "0 0 100 40", preserveAspectRatio: "none",
      "aria-hidden": "true" });
    // Guides at the elevated and high thresholds (placed by renderSpark).
    t.guideElevated = svg("line", { class: "guide guide-elevated", x1: 0, x2: 100 });
    t.guideHigh = svg("line", { class: "guide guide-high", x1: 0, x2: 100 });
    t.spark.append(t.guideElevated, t.guideHigh);
    t.line = svg("polyline", { class: "trace", points: "", fill: "none",
      "vector-effect": "non-scaling-stroke" });
    t.spark.append(t.line);

    const foot = el("div", "tile-foot");
    t.hydration = el("span", "hydration");
    t.since = el("span", "since");
    foot.append(t.hydration, t.since);

    t.alerts = el("ul", "tile-alerts");
    t.more = el("p", "more");

    t.root.append(head, who, stateRow, main, t.spark, foot, t.alerts, t.more);
    return t;
  }

  function placeTile(root) {
    const id = root.dataset.station;
    for (const other of dom.board.children) {
      if (other.classList.contains("tile") && compareIds(other.dataset.station, id) > 0) {
        dom.board.insertBefore(root, other);
        return;
      }
    }
    dom.board.appendChild(root);
  }

  function renderTile(st) {
    let t = tiles.get(st.id);
    if (!t) {
      t = buildTile(st.id);
      tiles.set(st.id, t);
      placeTile(t.root);
    }
    const offline = st.status === "offline";
    t.root.classList.toggle("is-offline", offline);
    t.root.classList.toggle("is-stale", !offline && st.stale);
    setText(t.name, st.name);
    renderAthlete(t, st);

    const session = st.session;
    let stateText = "No session";
    if (session) {
      stateText = STATE_LABEL[session.state] || session.state || "Session";
      if (isNum(session.set_count)) stateText += " \u00b7 set " + session.set_count;
    }
    setText(t.state, stateText);

    const tr = st.tremor;
    let level = "nodata";
    let big = "\u2014";
    if (tr) {
      level = tr.measurable && tr.level !== "none" ? tr.level : "none";
      if (level !== "none") {
        if (isNum(tr.ratio)) big = fmtRatio(tr.ratio);
        else if (isNum(tr.rms_mg)) big = tr.rms_mg.toFixed(0) + " mg";
      }
    }
    setVariant(t.root, "lv-", level);
    setVariant(t.levelBox, "lv-", level);
    setText(t.ratio, big);
    setText(t.level, TREMOR_LABEL[level] || level.toUpperCase());
    setText(t.hz, tr && isNum(tr.peak_hz) ? tr.peak_hz.toFixed(1) + " Hz" : "\u2014 Hz");
    setText(t.rms, tr && isNum(tr.rms_mg) ? tr.rms_mg.toFixed(1) + " mg" : "\u2014 mg");
    setText(t.sensor, tr ? tr.sensor + (tr.moving ? " \u00b7 moving" : "") : "");

    renderHydration(t, st.hydration);
    // The trace is redrawn when its points or guides moved; its slide with the
    // clock is the 2 s timer's job, not every reading's (a 2 Hz feed would
    // otherwise redraw every sparkline on the wall at 2 Hz).
    if (sparkKey(st) !== t.sparkKey) renderSpark(t, st);
    renderTileAlerts(t, st);
    renderAges(t, st);
  }

  // Who is checked in: the card's name, or "guest" (an athlete the gym has not named, or the
  // button's anonymous check-in), and when they checked in.
  function renderAthlete(t, st) {
    const a = st.athlete;
    let text = "";
    if (a) {
      const since = isNum(a.since_ts) ? " \u00b7 checked in " + fmtTime(a.since_ts) : "";
      text = (a.name || "guest") + since;
    }
    setText(t.who, text);
    t.pick.hidden = !GymStaff.name;
  }

  function renderHydration(t, h) {
    let text = "Fluid \u2014";
    let variant = null;
    if (h && h.mode === "body" && isNum(h.body_mass_loss_pct)) {
      const pct = h.body_mass_loss_pct;
      if (pct >= 0) {
        text = "Mass loss " + pct.toFixed(1) + " %";
        // Above 2 % performance and thinking suffer (ACSM).
        variant = pct >= 2 ? "warn" : null;
      } else {
        // Gaining mass means drinking more than sweating: a low-sodium risk.
        text = "Mass gain " + (-pct).toFixed(1) + " %";
        variant = "caution";
      }
    } else if (h && isNum(h.intake_ml)) {
      text = "Drank " + Math.round(h.intake_ml) + " mL";
    }
    setText(t.hydration, text);
    setVariant(t.hydration, "hyd-", variant);
  }

  // Times that move with the clock: stale badge and "last set" are redrawn each second.
  function renderAges(t, st) {
    const now = serverNow();
    let badge = "";
    if (st.status === "offline") badge = "OFFLINE";
    else if (st.stale) {
      badge = "NO DATA" + (isNum(st.last_seen) ? " " + fmtAgo(now - st.last_seen) : "");
    }
    setText(t.badge, badge);
    t.badge.hidden = badge === "";

    const s = st.session;
    let since = "";
    if (s && (s.state === "reps" || s.state === "hold")) since = "In a set";
    else if (s && isNum(s.last_set_end_ts)) {
      since = "Last set " + fmtAgo(now - s.last_set_end_ts) + " ago";
    }
    setText(t.since, since);
  }

  /*
   * Sparkline of the last minutes: ratio to baseline on a log scale (0.5x at
   * the bottom, 8x at the top, guides at the grade thresholds the station
   * applies: its session's, else the server's defaults); stations without a
   * baseline plot tremor RMS on a log scale from 1 to 300 mg instead.
   */
  function sparkY(frac) {
    return 40 - Math.min(Math.max(frac, 0), 1) * 38 - 1;
  }

  function ratioFrac(r) {
    return (Math.log2(Math.max(r, 0.5)) + 1) / 4;    // log2(0.5)=-1 .. log2(8)=3
  }

  function placeGuide(line, ratio) {
    const ok = isNum(ratio);
    setAttr(line, "visibility", ok ? "visible" : "hidden");
    if (!ok) return;
    const y = sparkY(ratioFrac(ratio)).toFixed(1);
    setAttr(line, "y1", y);
    setAttr(line, "y2", y);
  }

  function sparkGrades(st) {
    return (st.session && st.session.thresholds) || model.grades || {};
  }

  // What the trace is drawn from, but for the clock (the merge may rewrite the last buckets).
  function sparkKey(st) {
    const points = st.spark || [];
    const grades = sparkGrades(st);
    return [points.length, points.length ? points[0][0] : "", JSON.stringify(points.slice(-3)),
      grades.elevated_ratio, grades.high_ratio].join("|");
  }

  function renderSpark(t, st) {
    t.sparkKey = sparkKey(st);
    const grades = sparkGrades(st);
    placeGuide(t.guideElevated, grades.elevated_ratio);
    placeGuide(t.guideHigh, grades.high_ratio);
    const points = st.spark || [];
    const useRatio = points.some((p) => isNum(p[1]));
    t.spark.classList.toggle("spark-rms", !useRatio);
    const start = serverNow() - model.historyS;
    const coords = [];
    for (const p of points) {
      const x = ((p[0] - start) / model.historyS) * 100;
      if (x < 0) continue;
      let frac;
      if (useRatio) {
        frac = ratioFrac(isNum(p[1]) ? p[1] : 0.5);
      } else {
        const v = isNum(p[2]) ? p[2] : 1;
        frac = Math.log10(Math.max(v, 1)) / Math.log10(300);
      }
      const y = sparkY(frac);
      coords.push(x.toFixed(1) + "," + y.toFixed(1));
    }
    setAttr(t.line, "points", coords.join(" "));
  }

  function renderTileAlerts(t, st) {
    const alerts = (st.alerts || []).slice().sort(alertOrder);
    const top = alerts.length ? alertVariant(alerts[0]) : null;
    setVariant(t.root, "alert-", top);
    reconcile(t.alerts, alerts.slice(0, ALERTS_PER_TILE), (a) => a.id,
      (a) => buildAlertRow(st.id, a, "Ack"),
      (node, a) => paintAlertRow(node, st, a, "Ack"));
    const extra = alerts.length - ALERTS_PER_TILE;
    setText(t.more, extra > 0 ? "+" + extra + " more alert" + (extra > 1 ? "s" : "") : "");
    t.more.hidden = extra <= 0;
  }

  function buildAlertRow(stationId, alert, ackLabel) {
    const row = el("li", "alert");
    // The message is a button: it opens the whole alert, advice included.
    const msg = el("button", "alert-msg");
    msg.type = "button";
    msg.addEventListener("click", () => openAlert(stationId, alert.id));
    const text = el("div", "alert-text");
    text.append(msg, el("span", "alert-note"));
    row.append(el("span", "alert-level"), text);
    const button = el("button", "ack", ackLabel);
    button.type = "button";
    button.addEventListener("click", () => sendAck(stationId, alert.id));
    row.append(button);
    return row;
  }

  function paintAlertRow(row, st, alert, ackLabel) {
    setVariant(row, "alert-", alertVariant(alert));
    const why = unconfirmedWhy(st, alert);
    row.classList.toggle("unconfirmed", why !== "");
    setText(row.querySelector(".alert-level"), alertLabel(alert));
    setText(row.querySelector(".alert-msg"), alert.message || alert.code);
    paintNote(row.querySelector(".alert-note"), st, alert, why);
    paintAckButton(row.querySelector(".ack"), st.id, alert, ackLabel);
  }

  // One line under an alert: what the ack is doing, or why it is not confirmed.
  function ackNote(st, alert, why) {
    const key = ackKey(st.id, alert.id);
    const ack = alert.ack;
    if (failedAcks.has(key)) return failedAcks.get(key);
    if (ack && ack.state === "waiting") {
      return "Sent by " + ack.by + " at " + fmtTime(ack.ts) + ", waiting for the station";
    }
    if (ack && ack.state === "failed") return "Ack by " + ack.by + " not confirmed: " + ack.error;
    return why ? why.charAt(0).toUpperCase() + why.slice(1) : "";
  }

  function paintNote(node, st, alert, why) {
    const text = ackNote(st, alert, why);
    setText(node, text);
    node.hidden = text === "";
    node.classList.toggle("note-failed", text !== "" && (failedAcks.has(ackKey(st.id, alert.id)) ||
      (alert.ack && alert.ack.state === "failed")));
  }

  function paintAckButton(button, stationId, alert, label) {
    const key = ackKey(stationId, alert.id);
    let text = label;
    let busy = false;
    const ack = alert.ack;
    if (pendingAcks.has(key)) { text = "Sending\u2026"; busy = true; }
    else if (ack && ack.state === "waiting") { text = "Sent, waiting\u2026"; busy = true; }
    else if (failedAcks.has(key) || (ack && ack.state === "failed")) {
      text = "Retry " + label.toLowerCase();
    }
    setText(button, text);
    button.disabled = busy;
    button.title = failedAcks.get(key) || (ack && ack.error) || "";
  }

  // ------------------------------------------------------------------ banners

  // Urgent alerts and every red flag get a full-width banner, worst first.
  function renderBanners() {
    const list = [];
    for (const st of model.stations.values()) {
      for (const a of st.alerts || []) {
        if ((a.level === "urgent" || a.red_flag) && !isEquipment(a)) list.push({ st, a });
      }
    }
    list.sort((x, y) => (ALERT_RANK[y.a.level] - ALERT_RANK[x.a.level]) ||
      ((y.a.raised_ts || 0) - (x.a.raised_ts || 0)));
    let container = dom.banners.querySelector(".banner-list");
    if (!container) {
      container = el("div", "banner-list");
      const note = el("p", "redflag-note");
      note.append(el("strong", null, "Red flag. "), document.createTextNode(RED_FLAG_ASK));
      const more = el("p", "banner-more");
      dom.banners.append(container, more, note);
    }
    reconcile(container, list.slice(0, MAX_BANNERS), (x) => ackKey(x.st.id, x.a.id),
      (x) => buildBanner(x.st.id, x.a), (node, x) => paintBanner(node, x.st, x.a));
    // Several at once: one line each, so the stations stay on screen too.
    container.classList.toggle("compact", list.length > 1);
    const extra = list.length - MAX_BANNERS;
    const more = dom.banners.querySelector(".banner-more");
    setText(more, extra > 0 ? "+" + extra + " more urgent or red-flag alerts: see the tiles" : "");
    more.hidden = extra <= 0;
    dom.banners.hidden = list.length === 0;
    beepForNew(list);
  }

  function buildBanner(stationId, alert) {
    const box = el("div", "banner");
    box.setAttribute("role", "alert");
    const text = el("div", "banner-text");
    const head = el("p", "banner-head");
    head.append(el("span", "alert-level"), el("span", "banner-station"), el("span", "banner-msg"));
    text.append(head, el("p", "banner-advice"), el("p", "alert-note banner-note"));
    const button = el("button", "ack banner-ack", "Acknowledge");
    button.type = "button";
    button.addEventListener("click", () => sendAck(stationId, alert.id));
    box.append(text, button);
    return box;
  }

  function paintBanner(box, st, alert) {
    setVariant(box, "alert-", alert.level);
    const flag = alert.red_flag && alert.level !== "urgent" ? " \u00b7 RED FLAG" : "";
    const label = ALERT_LABEL[alert.level] + flag;
    setText(box.querySelector(".alert-level"), label);
    setText(box.querySelector(".banner-station"), st.name);
    setText(box.querySelector(".banner-msg"), alert.message || alert.code);
    setText(box.querySelector(".banner-advice"), alert.advice || "");
    const why = unconfirmedWhy(st, alert);
    box.classList.toggle("unconfirmed", why !== "");
    paintNote(box.querySelector(".banner-note"), st, alert, why);
    paintAckButton(box.querySelector(".ack"), st.id, alert, "Acknowledge");
  }

  // ------------------------------------------------------------------ acknowledging

  async function sendAck(stationId, alertId) {
    const key = ackKey(stationId, alertId);
    if (pendingAcks.has(key)) return;
    if (!GymStaff.name) {
      askLogin("Log in to acknowledge: your name is recorded with the acknowledgement.",
        () => sendAck(stationId, alertId));
      return;
    }
    pendingAcks.add(key);
    failedAcks.delete(key);
    repaint(stationId);
    try {
      const reply = await GymStaff.post("/api/ack", { station: stationId, id: alertId });
      // Show "waiting" now; the server's next update says the same on every screen.
      const st = model.stations.get(stationId);
      for (const a of (st && st.alerts) || []) {
        if (a.id === alertId) a.ack = { state: "waiting", by: reply.by, ts: serverNow() };
      }
    } catch (err) {
      if (err.status === 401) {
        askLogin("Your login has ended: log in again to acknowledge.",
          () => sendAck(stationId, alertId));
      } else {
        failedAcks.set(key, "Not sent: " + err.message);
      }
    } finally {
      pendingAcks.delete(key);
      repaint(stationId);
    }
  }

  function repaint(stationId) {
    const st = model.stations.get(stationId);
    if (st) renderTile(st);
    renderBanners();
    if (openAlertKey) paintAlertDialog();
  }

  // ------------------------------------------------------------------ staff login

  let afterLogin = null;

  function askLogin(why, then) {
    afterLogin = then || null;
    setText(dom.loginWhy, why || "");
    dom.loginError.hidden = true;
    dom.loginForm.reset();
    if (!dom.loginDialog.open) dom.loginDialog.showModal();
    dom.loginForm.elements.name.focus();
  }

  dom.loginForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = dom.loginForm.querySelector(".login-submit");
    button.disabled = true;
    dom.loginError.hidden = true;
    try {
      await GymStaff.login(dom.loginForm.elements.name.value.trim(),
        dom.loginForm.elements.pin.value);
      dom.loginDialog.close();
      const then = afterLogin;
      afterLogin = null;
      if (then) then();
    } catch (err) {
      setText(dom.loginError, err.message);
      dom.loginError.hidden = false;
      dom.loginForm.elements.pin.value = "";
    } finally {
      button.disabled = false;
    }
  });
  dom.loginCancel.addEventListener("click", () => { afterLogin = null; dom.loginDialog.close(); });
  dom.staffLogin.addEventListener("click", () => askLogin("", null));
  dom.staffLogout.addEventListener("click", () => GymStaff.logout().catch(() => {}));

  function renderStaff() {
    const name = GymStaff.name;
    setText(dom.staffName, name ? "Staff: " + name : "");
    dom.staffName.hidden = !name;
    dom.staffLogin.hidden = !!name;
    dom.staffLogout.hidden = !name;
    for (const t of tiles.values()) t.pick.hidden = !name;
    if (!name && dom.checkinDialog.open) dom.checkinDialog.close();
  }

  GymStaff.onChange(renderStaff);

  // ------------------------------------------------------------------ one alert in full

  let openAlertKey = null;

  function findAlert(stationId, alertId) {
    const st = model.stations.get(stationId);
    const a = st && (st.alerts || []).find((x) => x.id === alertId);
    return a ? { st, a } : null;
  }

  function openAlert(stationId, alertId) {
    openAlertKey = [stationId, alertId];
    paintAlertDialog();
    if (!dom.alertDialog.open) dom.alertDialog.showModal();
  }

  function paintAlertDialog() {
    const d = dom.alertDialog;
    const found = openAlertKey && findAlert(openAlertKey[0], openAlertKey[1]);
    const ackButton = d.querySelector("#alert-dialog-ack");
    if (!found) {
      // Acknowledged or cleared meanwhile: say so rather than vanish.
      setText(d.querySelector("#alert-dialog-note"), "This alert is no longer active.");
      ackButton.hidden = true;
      return;
    }
    const { st, a } = found;
    ackButton.hidden = false;
    setVariant(d, "alert-", alertVariant(a));
    setText(d.querySelector("#alert-dialog-level"), alertLabel(a));
    setText(d.querySelector("#alert-dialog-station"), st.name);
    setText(d.querySelector("#alert-dialog-msg"), a.message || a.code);
    setText(d.querySelector("#alert-dialog-advice"), a.advice || "");
    const note = [ackNote(st, a, unconfirmedWhy(st, a))];
    if (isNum(a.raised_ts)) note.push("Raised at " + fmtTime(a.raised_ts) + ".");
    setText(d.querySelector("#alert-dialog-note"), note.filter(Boolean).join(" "));
    paintAckButton(ackButton, st.id, a, "Acknowledge");
  }

  dom.alertDialog.querySelector("#alert-dialog-close").addEventListener("click", () => {
    openAlertKey = null;
    dom.alertDialog.close();
  });
  dom.alertDialog.querySelector("#alert-dialog-ack").addEventListener("click", () => {
    if (openAlertKey) sendAck(openAlertKey[0], openAlertKey[1]);
  });
  dom.alertDialog.addEventListener("close", () => { openAlertKey = null; });

  // ------------------------------------------------------------------ checking athletes in

  const picker = { station: null, athletes: [], busy: false };

  async function openPicker(stationId) {
    if (!GymStaff.name) {
      askLogin("Log in to check an athlete in.", () => openPicker(stationId));
      return;
    }
    picker.station = stationId;
    picker.athletes = [];
    dom.checkinError.hidden = true;
    dom.checkinFilter.value = "";
    paintPicker();
    if (!dom.checkinDialog.open) dom.checkinDialog.showModal();
    dom.checkinFilter.focus();
    try {
      const reply = await fetch("/api/athletes", { cache: "no-store", credentials: "same-origin" });
      if (reply.status === 401) {
        dom.checkinDialog.close();
        askLogin("Your login has ended: log in again to check an athlete in.",
          () => openPicker(stationId));
        return;
      }
      if (!reply.ok) throw new Error("HTTP " + reply.status);
      picker.athletes = (await reply.json()).athletes || [];
    } catch (err) {
      pickerError("Could not load the athletes: " + err.message);
    }
    paintPicker();
  }

  function pickerError(text) {
    setText(dom.checkinError, text);
    dom.checkinError.hidden = false;
  }

  function paintPicker() {
    const st = model.stations.get(picker.station);
    setText(dom.checkinStation, st ? st.name : picker.station || "");
    const a = st && st.athlete;
    setText(dom.checkinNow, a ? "Checked in now: " + (a.name || "guest") +
      (isNum(a.since_ts) ? " since " + fmtTime(a.since_ts) : "") : "Nobody is checked in here.");
    dom.checkinCheckout.hidden = !a;
    const words = dom.checkinFilter.value.trim().toLowerCase();
    const shown = picker.athletes.filter((x) => !words || x.name.toLowerCase().includes(words));
    reconcile(dom.checkinList, shown, (x) => x.id,
      (x) => {
        const li = el("li");
        const button = el("button", "checkin-athlete");
        button.type = "button";
        button.addEventListener("click", () => sendCheckin({ station: picker.station, athlete: x.id }));
        li.append(button);
        return li;
      },
      (node, x) => {
        const other = x.station && x.station !== picker.station && model.stations.get(x.station);
        const where = other ? " \u00b7 at " + other.name : "";
        const here = x.station === picker.station ? " \u00b7 checked in here" : "";
        const button = node.querySelector("button");
        setText(button, x.name + where + here);
        button.disabled = picker.busy;
      });
    if (!picker.athletes.length && dom.checkinError.hidden) {
      setText(dom.checkinNow, dom.checkinNow.textContent + " No athlete has a name yet " +
        "(names are set on the coach's pages).");
    }
  }

  async function sendCheckin(body) {
    if (picker.busy) return;
    picker.busy = true;
    dom.checkinError.hidden = true;
    paintPicker();
    try {
      await GymStaff.post("/api/session", body);
      dom.checkinDialog.close();
    } catch (err) {
      if (err.status === 401) {
        dom.checkinDialog.close();
        askLogin("Your login has ended: log in again to check an athlete in.",
          () => openPicker(body.station));
      } else {
        pickerError("Not sent: " + err.message);
      }
    } finally {
      picker.busy = false;
      if (dom.checkinDialog.open) paintPicker();
    }
  }

  dom.checkinFilter.addEventListener("input", paintPicker);
  dom.checkinCheckout.addEventListener("click",
    () => sendCheckin({ station: picker.station, action: "checkout" }));
  dom.checkinClose.addEventListener("click", () => dom.checkinDialog.close());
  dom.checkinDialog.addEventListener("close", () => { picker.station = null; });

  // ------------------------------------------------------------------ who acknowledged what

  function renderAcks() {
    const cutoff = serverNow() - ACKS_SHOWN_S;
    const recent = model.acks.filter((x) => !isNum(x.ts) || x.ts >= cutoff)
      .slice(0, MAX_ACKS_SHOWN);
    reconcile(dom.acks, recent, (x) => x.station + "\u0000" + x.id,
      () => el("p", "ack-line"),
      (node, x) => {
        const what = (x.kind === "equipment" ? EQUIPMENT_LABEL : ALERT_LABEL[x.level] || "") +
          " " + (x.name || x.station) + ": " + (x.message || x.code);
        const when = isNum(x.ts) ? " at " + fmtTime(x.ts) : "";
        setText(node, "\u2713 " + what + " \u2014 acknowledged by " + (x.by || "staff") + when);
      });
    dom.acks.hidden = recent.length === 0;
  }

  // ------------------------------------------------------------------ sound

  // Off by default: browsers refuse sound before a click, and a wall of beeps
  // nobody asked for gets a screen unplugged. One click on "Sound" enables it.
  const sound = { on: false, ctx: null, heard: new Set(), lastBeep: 0 };

  function setSound(on) {
    sound.on = on;
    if (on && !sound.ctx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx) sound.ctx = new Ctx();
    }
    if (on && sound.ctx) {
      // Without a click (kiosk start-up) this only works if the browser was
      // told to allow it (--autoplay-policy=no-user-gesture-required).
      sound.ctx.resume().then(() => beep(1), () => {});
    }
    dom.sound.setAttribute("aria-pressed", String(on));
    setText(dom.sound, on ? "Sound on" : "Sound off");
  }

  dom.sound.addEventListener("click", () => setSound(!sound.on));
  // A kiosk with no mouse can start with sound on: ?sound=1 in its URL.
  if (new URLSearchParams(location.search).get("sound") === "1") setSound(true);

  function beep(times) {
    if (!sound.on || !sound.ctx) return;
    const ctx = sound.ctx;
    for (let i = 0; i < times; i++) {
      const start = ctx.currentTime + i * 0.3;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.2);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.22);
    }
    sound.lastBeep = Date.now();
  }

  // Three beeps for a new urgent alert; one every 30 s while any is unacknowledged.
  function beepForNew(list) {
    const urgent = list.filter((x) => x.a.level === "urgent" &&
      !(x.a.ack && x.a.ack.state === "waiting"));
    let fresh = false;
    for (const x of urgent) {
      const key = ackKey(x.st.id, x.a.id);
      if (!sound.heard.has(key)) { sound.heard.add(key); fresh = true; }
    }
    if (fresh) beep(3);
    else if (urgent.length && Date.now() - sound.lastBeep > 30000) beep(1);
  }

  // ------------------------------------------------------------------ header

  function renderSummary() {
    let offline = 0, stale = 0, alerts = 0, equipment = 0, high = 0, elevated = 0;
    for (const st of model.stations.values()) {
      if (st.status === "offline") offline++;
      else if (st.stale) stale++;
      for (const a of st.alerts || []) {
        if (isEquipment(a)) equipment++;
        else alerts++;
      }
      const tr = st.tremor;
      if (tr && tr.measurable && st.status !== "offline" && !st.stale) {
        if (tr.level === "high") high++;
        else if (tr.level === "elevated") elevated++;
      }
    }
    const parts = [model.stations.size + " station" + (model.stations.size === 1 ? "" : "s")];
    if (offline) parts.push(offline + " offline");
    if (stale) parts.push(stale + " no data");
    if (alerts) parts.push(alerts + " active alert" + (alerts === 1 ? "" : "s"));
    if (high) parts.push(high + " HIGH tremor");
    if (elevated) parts.push(elevated + " elevated");
    if (equipment) parts.push(equipment + " sensor problem" + (equipment === 1 ? "" : "s"));
    // "No alerts" only when nothing on the wall says otherwise.
    if (!alerts && !high && !elevated && !equipment) parts.push("no alerts");
    setText(dom.summary, parts.join(" \u00b7 "));
    const full = model.refused > 0;
    setText(dom.boardFull, full ? "Board full: messages from unlisted stations are not shown" : "");
    dom.boardFull.hidden = !full;
  }

  function renderLink() {
    let text = "Live";
    let variant = "live";
    if (!model.streamUp) { text = "Display link lost \u2014 reconnecting"; variant = "lost"; }
    else if (!model.linkUp) { text = "Broker offline \u2014 retrying"; variant = "broker"; }
    setText(dom.link, text);
    setVariant(dom.link, "link-", variant);
  }

  function tickClock() {
    const now = new Date(serverNow() * 1000);
    setText(dom.clock, TIME_FORMAT.format(now));
    for (const [id, t] of tiles) {
      const st = model.stations.get(id);
      if (st) renderAges(t, st);
    }
    renderAcks();
  }

  // ------------------------------------------------------------------ layout

  /*
   * Choose the number of columns that gives the largest tiles of a pleasant
   * shape for this many stations on this screen; CSS container units then
   * scale every font with its tile, so 5 or 50 stations, 1080p or 4K, all fit.
   */
  function fitGrid() {
    const n = Math.max(tiles.size, 1);
    const style = getComputedStyle(dom.board);
    const gap = parseFloat(style.columnGap) || 0;
    const width = dom.board.clientWidth - (parseFloat(style.paddingLeft) || 0) -
      (parseFloat(style.paddingRight) || 0);
    const height = dom.board.clientHeight - (parseFloat(style.paddingTop) || 0) -
      (parseFloat(style.paddingBottom) || 0);
    let best = null;
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const w = (width - gap * (cols - 1)) / cols;
      const h = (height - gap * (rows - 1)) / rows;
      const score = Math.min(w / TILE_ASPECT, h);
      if (!best || score > best.score) best = { cols, rows, w, h, score };
    }
    let rowHeight = Math.min(best.h, best.w * MAX_TALL);
    // A phone in a coach's hand, not a wall: scroll rather than shrink the
    // tiles past reading.
    const scroll = best.w < MIN_TILE_W || best.h < MIN_TILE_H;
    if (scroll) {
      best.cols = Math.max(1, Math.floor((width + gap) / (MIN_TILE_W * 1.2 + gap)));
      best.rows = Math.ceil(n / best.cols);
      const w = (width - gap * (best.cols - 1)) / best.cols;
      rowHeight = Math.max(MIN_TILE_H * 1.1, w / TILE_ASPECT);
    }
    dom.board.classList.toggle("scroll", scroll);
    // Written only when they change: once a frame, an unchanged grid must not
    // send every tile through style and layout again.
    setStyle(dom.board, "--cols", String(best.cols));
    setStyle(dom.board, "--rows", String(best.rows));
    setStyle(dom.board, "--row-h", Math.floor(rowHeight) + "px");
  }

  function setStyle(node, name, value) {
    if (node.style.getPropertyValue(name) !== value) node.style.setProperty(name, value);
  }

  new ResizeObserver(() => fitGrid()).observe(dom.board);

  // ------------------------------------------------------------------ the stream

  let source = null;
  let lastEvent = 0;

  function connect() {
    if (source) source.close();
    source = new EventSource("/events");
    lastEvent = Date.now();
    source.addEventListener("snapshot", (e) => {
      lastEvent = Date.now();
      model.streamUp = true;
      applySnapshot(JSON.parse(e.data));
    });
    source.addEventListener("update", (e) => {
      lastEvent = Date.now();
      applyUpdate(JSON.parse(e.data));
    });
    source.addEventListener("ping", (e) => {
      lastEvent = Date.now();
      model.offset = JSON.parse(e.data).now - Date.now() / 1000;
    });
    source.addEventListener("error", () => {
      model.streamUp = false;
      renderLink();
      // EventSource retries by itself unless the server answered with an
      // error; then it gives up (CLOSED) and we start over a bit later.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    });
  }

  // A stream can die silently (a Wi-Fi drop leaves a half-open socket): if no
  // event, not even a ping, came for a while, start a new one.
  setInterval(() => {
    if (Date.now() - lastEvent > WATCHDOG_MS) connect();
  }, 5000);
  setInterval(tickClock, 1000);
  // The sparklines slide left as time passes, even without new data.
  setInterval(() => {
    for (const [id, t] of tiles) {
      const st = model.stations.get(id);
      if (st) renderSpark(t, st);
    }
  }, 2000);

  // ------------------------------------------------------------------ benchmark hook

  /*
   * Only with ?bench=1 in the URL: record when each new RMS text reached the
   * screen, as wall-clock milliseconds (performance.timeOrigin + now(), the
   * same clock the publisher reads on this machine). The timestamp is taken
   * in a task queued from requestAnimationFrame, i.e. after the frame that
   * shows the change was produced. bench/bench_display.py reads
   * window.__displayBench.records.
   */
  function installBenchHook() {
    const records = [];
    window.__displayBench = { records };
    let pending = [];
    let scheduled = false;
    const observer = new MutationObserver((mutations) => {
      for (const m of mutations) {
        const target = m.target.nodeType === 1 ? m.target : m.target.parentElement;
        if (!target || !target.classList.contains("rms")) continue;
        const tile = target.closest(".tile");
        if (tile) pending.push([tile.dataset.station, target.textContent]);
      }
      if (pending.length && !scheduled) {
        scheduled = true;
        requestAnimationFrame(() => setTimeout(() => {
          const t = performance.timeOrigin + performance.now();
          for (const [s, v] of pending) if (records.length < 500000) records.push({ s, v, t });
          pending = [];
          scheduled = false;
        }, 0));
      }
    });
    observer.observe(dom.board, { subtree: true, childList: true, characterData: true });
  }

  if (new URLSearchParams(location.search).get("bench") === "1") installBenchHook();

  renderLink();
  renderStaff();
  tickClock();
  fitGrid();
  connect();
  GymStaff.me().catch(() => {});
})();
