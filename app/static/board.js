// The triage board: keyboard, drag and drop, selection, and new reports without a reload.
//
// The server renders everything; this file only moves focus, sends actions through htmx
// (which adds the CSRF header, see flagdesk.js) and swaps the #columns fragment it returns.
// Keyboard: j/k walk the cards in reading order down each column and on to the next;
// h/l (or arrows) jump to the neighbouring column. The full list is in the help dialog (?).
(function () {
  "use strict";

  var JSON_FIRST = "application/json, text/html;q=0.9"; // errors come back as JSON
  var STATUSES = ["new", "triaged", "in_progress", "waiting_on_reporter", "resolved", "dismissed"];

  function init() {
    var board = document.getElementById("board");
    if (!board) return;
    document.documentElement.classList.add("js");

    var canTriage = board.dataset.canTriage === "true";
    var pollMs = Math.max(parseInt(board.dataset.pollMs, 10) || 10000, 250);
    var statusLine = document.getElementById("board-status");
    var errorLine = document.getElementById("board-error");
    var moveDialog = document.getElementById("move-dialog");
    var helpDialog = document.getElementById("help-dialog");
    var bulkForm = document.getElementById("bulk-form");
    var busy = false; // a request of ours is in flight
    var dragging = null; // ids being dragged
    var pending = null; // what to restore after the next swap of #columns
    var returnFocus = null;
    var currentId = null; // the card that holds the roving tab stop

    // --- small helpers -----------------------------------------------------------------
    function columnsEl() { return document.getElementById("columns"); }
    function allCards() {
      var columns = columnsEl();
      return columns ? Array.prototype.slice.call(columns.querySelectorAll(".card")) : [];
    }
    function cardById(id) {
      return id ? document.getElementById("card-" + id) : null;
    }
    function activeCard() {
      var el = document.activeElement;
      var card = el && el.closest ? el.closest(".card") : null;
      return card || cardById(currentId);
    }
    function selectedIds() {
      return Array.prototype.slice.call(document.querySelectorAll(".card-select:checked"))
        .map(function (box) { return box.value; });
    }
    function say(message) {
      errorLine.textContent = "";
      statusLine.textContent = message;
    }
    // aria-busy while the columns are being replaced: assistive technology (and tests)
    // wait for the new ones.
    function working(on) {
      if (on) board.setAttribute("aria-busy", "true");
      else board.removeAttribute("aria-busy");
    }
    function complain(message) {
      statusLine.textContent = "";
      errorLine.textContent = message;
    }
    function openDialog() {
      return document.querySelector("dialog[open]");
    }
    function typing(el) {
      if (!el || !el.tagName) return false;
      if (el.isContentEditable) return true;
      var tag = el.tagName;
      if (tag === "TEXTAREA" || tag === "SELECT") return true;
      if (tag !== "INPUT") return false;
      return ["checkbox", "radio", "button", "submit", "reset"].indexOf(el.type) === -1;
    }

    // --- focus: one card is in the tab order; j/k/h/l move it ------------------------------
    function focusCard(card) {
      if (!card) return;
      allCards().forEach(function (c) { c.tabIndex = -1; });
      card.tabIndex = 0;
      currentId = card.dataset.id;
      card.focus();
    }
    function rovingStop() {
      var cards = allCards();
      if (!cards.length) return;
      var keep = cardById(currentId) || cards[0];
      cards.forEach(function (c) { c.tabIndex = c === keep ? 0 : -1; });
    }
    function step(delta) {
      var cards = allCards();
      if (!cards.length) return;
      var card = activeCard();
      var index = card ? cards.indexOf(card) : -1;
      if (index === -1) { focusCard(cards[delta > 0 ? 0 : cards.length - 1]); return; }
      focusCard(cards[Math.min(Math.max(index + delta, 0), cards.length - 1)]);
    }
    function sideways(delta) {
      if (!columnsEl()) return;
      var columns = Array.prototype.slice.call(columnsEl().querySelectorAll(".column"));
      var card = activeCard();
      if (!card) { step(1); return; }
      var column = card.closest(".column");
      var row = Array.prototype.indexOf.call(column.querySelectorAll(".card"), card);
      for (var i = columns.indexOf(column) + delta; i >= 0 && i < columns.length; i += delta) {
        var cards = columns[i].querySelectorAll(".card");
        if (cards.length) { focusCard(cards[Math.min(row, cards.length - 1)]); return; }
      }
    }
    document.addEventListener("focusin", function (event) {
      var card = event.target.closest && event.target.closest(".card");
      if (card && columnsEl() && columnsEl().contains(card)) {
        currentId = card.dataset.id;
        allCards().forEach(function (c) { c.tabIndex = c === card ? 0 : -1; });
      }
    });

    // --- selection -------------------------------------------------------------------------
    function updateSelection() {
      var count = selectedIds().length;
      var label = document.querySelector("[data-selected-count]");
      if (label) label.textContent = count + (count === 1 ? " ticket selected" : " tickets selected");
    }
    function clearSelection() {
      document.querySelectorAll(".card-select:checked").forEach(function (box) { box.checked = false; });
      updateSelection();
    }
    document.addEventListener("change", function (event) {
      if (event.target.classList.contains("card-select")) updateSelection();
    });
    document.addEventListener("click", function (event) {
      if (event.target.closest("[data-clear-selection]")) {
        clearSelection();
        var card = cardById(currentId);
        if (card) focusCard(card);
      }
    });

    // --- acting on tickets -----------------------------------------------------------------
    function targets() {
      var ids = selectedIds();
      if (ids.length) return ids;
      var card = activeCard();
      return card ? [card.dataset.id] : [];
    }
    function act(ids, action, value, attempt) {
      if (!canTriage) { complain("Your role can read the board but not change tickets."); return; }
      if (!ids.length) { complain("Focus a card first (j / k), or select some (x)."); return; }
      if (busy) {
        // The board is being refreshed or another action is on its way: go next.
        if ((attempt || 0) < 20) {
          setTimeout(function () { act(ids, action, value, (attempt || 0) + 1); }, 100);
        }
        return;
      }
      busy = true;
      working(true);
      var card = activeCard();
      pending = { clearSelection: true, focusId: card ? card.dataset.id : null };
      ids.forEach(function (id) { var c = cardById(id); if (c) c.classList.add("is-busy"); });
      window.htmx.ajax("POST", board.dataset.actionsUrl, {
        target: "#columns", swap: "outerHTML", headers: { Accept: JSON_FIRST },
        values: { ids: ids, action: action, value: value || "", back: columnsEl().dataset.query }
      }).then(done, done);
    }
    // htmx settles the new columns a moment after the request resolves; the board is free
    // again once that has happened (or, should nothing have been swapped, soon after).
    function done() {
      var waiting = pending;
      if (!waiting) { busy = false; return; }
      setTimeout(function () {
        if (pending !== waiting) return;
        pending = null;
        busy = false;
        working(false);
        allCards().forEach(function (c) { c.classList.remove("is-busy"); });
      }, 1000);
    }

    // The bulk bar posts through htmx itself; it disappears with the selection, so focus
    // goes back to the card the person was on.
    document.addEventListener("htmx:beforeRequest", function (event) {
      if (bulkForm && event.detail.elt === bulkForm) {
        pending = { clearSelection: true, focusId: currentId };
        working(true);
      }
    });

    // Capture what the person had (focus, selection, revealed text, scroll) and give it
    // back once htmx has put the new columns in.
    document.addEventListener("htmx:beforeSwap", function (event) {
      if (!event.detail.target || event.detail.target.id !== "columns") return;
      var state = pending || {};
      var focused = document.activeElement && document.activeElement.closest &&
        document.activeElement.closest("#columns .card");
      if (!state.focusId && focused) state.focusId = focused.dataset.id;
      state.hadFocus = !!(document.activeElement && columnsEl().contains(document.activeElement)) ||
        state.clearSelection === true;
      state.focusColumn = focused ? focused.closest(".column").dataset.status : null;
      state.focusRow = focused ? Array.prototype.indexOf.call(
        focused.closest(".column").querySelectorAll(".card"), focused) : 0;
      state.selected = state.clearSelection ? [] : selectedIds();
      state.revealed = Array.prototype.slice.call(
        columnsEl().querySelectorAll('.sensitive[data-revealed="true"]'))
        .map(function (box) { return box.closest(".card").dataset.id; });
      state.seen = allCards().map(function (c) { return c.dataset.id; });
      state.scroll = {};
      columnsEl().querySelectorAll(".column").forEach(function (column) {
        state.scroll[column.dataset.status] = column.querySelector(".cards").scrollTop;
      });
      pending = state;
    });
    document.addEventListener("htmx:afterSettle", function () {
      var state = pending;
      var columns = columnsEl();
      if (!state || !columns || !state.seen) return;
      pending = null;
      state.selected.forEach(function (id) {
        var box = document.querySelector('.card-select[value="' + CSS.escape(id) + '"]');
        if (box) box.checked = true;
      });
      updateSelection();
      state.revealed.forEach(function (id) {
        var card = cardById(id);
        var box = card && card.querySelector(".sensitive");
        if (box && box.dataset.revealed !== "true") window.Flagdesk.toggleSensitive(box, true);
      });
      columns.querySelectorAll(".column").forEach(function (column) {
        var top = state.scroll[column.dataset.status];
        if (top) column.querySelector(".cards").scrollTop = top;
      });
      if (state.markNew) {
        allCards().forEach(function (c) {
          if (state.seen.indexOf(c.dataset.id) === -1) c.classList.add("is-new");
        });
      }
      var target = cardById(state.focusId);
      if (!target && state.focusColumn) {
        var column = columns.querySelector('.column[data-status="' + state.focusColumn + '"]');
        var cards = column ? column.querySelectorAll(".card") : [];
        target = cards[Math.min(state.focusRow, cards.length - 1)] || allCards()[0];
      }
      if (state.hadFocus && target) focusCard(target);
      else rovingStop();
      if (state.message) say(state.message);
      busy = false;
      working(false);
    });
    // The server says what an action did; it is announced once the new columns are in.
    document.addEventListener("htmx:beforeSwap", function (event) {
      var message = event.detail.xhr && event.detail.xhr.getResponseHeader("X-Board-Message");
      if (message && pending) pending.message = message;
    });
    document.addEventListener("htmx:responseError", function (event) {
      pending = null;
      busy = false;
      working(false);
      allCards().forEach(function (c) { c.classList.remove("is-busy"); });
      var text = "The board could not do that (" + event.detail.xhr.status + ").";
      try {
        var error = JSON.parse(event.detail.xhr.responseText).error;
        text = error.message;
        var fields = Object.keys(error.fields || {}).map(function (name) {
          return name + ": " + [].concat(error.fields[name]).join(" ");
        });
        if (fields.length) text += " " + fields.join("; ");
      } catch (ignored) { /* not our JSON: keep the generic text */ }
      complain(text);
    });
    document.addEventListener("htmx:sendError", function () {
      pending = null;
      busy = false;
      working(false);
      allCards().forEach(function (c) { c.classList.remove("is-busy"); });
      complain("Could not reach Flagdesk. Check the connection and try again.");
    });

    // --- drag and drop between columns --------------------------------------------------------
    document.addEventListener("dragstart", function (event) {
      var card = event.target.closest && event.target.closest(".card[draggable='true']");
      if (!card) return;
      var box = card.querySelector(".card-select");
      dragging = box && box.checked ? selectedIds() : [card.dataset.id];
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.dataset.id);
      card.classList.add("is-dragging");
    });
    document.addEventListener("dragend", function () {
      dragging = null;
      document.querySelectorAll(".is-dragging, .is-drop-target").forEach(function (el) {
        el.classList.remove("is-dragging", "is-drop-target");
      });
    });
    document.addEventListener("dragover", function (event) {
      var column = dragging && event.target.closest && event.target.closest("#columns .column");
      if (!column) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      document.querySelectorAll(".is-drop-target").forEach(function (el) {
        if (el !== column) el.classList.remove("is-drop-target");
      });
      column.classList.add("is-drop-target");
    });
    document.addEventListener("drop", function (event) {
      var column = dragging && event.target.closest && event.target.closest("#columns .column");
      if (!column) return;
      event.preventDefault();
      var ids = dragging.filter(function (id) {
        var card = cardById(id);
        return card && card.dataset.status !== column.dataset.status;
      });
      column.classList.remove("is-drop-target");
      if (ids.length) {
        focusCard(cardById(ids[0]));
        act(ids, "move", column.dataset.status);
      }
    });

    // --- dialogs: move menu and the shortcut list ------------------------------------------
    function showDialog(dialog) {
      returnFocus = document.activeElement;
      dialog.showModal();
    }
    function openMove() {
      var ids = targets();
      if (!canTriage) { complain("Your role can read the board but not change tickets."); return; }
      if (!ids.length) { complain("Focus a card first (j / k), or select some (x)."); return; }
      moveDialog.dataset.ids = ids.join(" ");
      moveDialog.querySelector("[data-move-what]").textContent =
        ids.length === 1 ? ids[0] : ids.length + " selected tickets";
      var statuses = ids.map(function (id) { var c = cardById(id); return c && c.dataset.status; });
      moveDialog.querySelectorAll("[data-move]").forEach(function (button) {
        var here = statuses.every(function (s) { return s === button.dataset.move; });
        if (here) button.setAttribute("aria-current", "true");
        else button.removeAttribute("aria-current");
      });
      showDialog(moveDialog);
      var first = moveDialog.querySelector("[data-move]:not([aria-current])");
      if (first) first.focus();
    }
    function moveTo(status) {
      var ids = (moveDialog.dataset.ids || "").split(" ").filter(Boolean);
      moveDialog.close();
      act(ids, "move", status);
    }
    if (moveDialog) {
      moveDialog.addEventListener("click", function (event) {
        var button = event.target.closest("[data-move]");
        if (button) moveTo(button.dataset.move);
      });
      moveDialog.addEventListener("keydown", function (event) {
        var n = parseInt(event.key, 10);
        if (n >= 1 && n <= STATUSES.length && !event.ctrlKey && !event.metaKey && !event.altKey) {
          event.preventDefault();
          moveTo(STATUSES[n - 1]);
        }
      });
    }
    document.addEventListener("click", function (event) {
      if (event.target.closest("[data-open-help]")) showDialog(helpDialog);
      var close = event.target.closest("[data-close-dialog]");
      if (close) close.closest("dialog").close();
    });
    document.querySelectorAll("dialog").forEach(function (dialog) {
      dialog.addEventListener("close", function () {
        var back = returnFocus;
        returnFocus = null;
        if (back && document.contains(back) && !busy) back.focus();
        else if (cardById(currentId)) focusCard(cardById(currentId));
      });
    });

    // --- the keyboard ------------------------------------------------------------------------
    function reveal() {
      var card = activeCard();
      var box = card && card.querySelector(".sensitive");
      if (box) window.Flagdesk.toggleSensitive(box, box.dataset.revealed !== "true");
    }
    function toggleSelected() {
      var card = activeCard();
      var box = card && card.querySelector(".card-select");
      if (!box) return;
      box.checked = !box.checked;
      updateSelection();
    }
    function assignSomeone() {
      var select = document.getElementById("bulk-assign");
      if (!select) return;
      if (!selectedIds().length) toggleSelected();
      if (selectedIds().length) select.focus();
    }
    var keys = {
      j: function () { step(1); }, ArrowDown: function () { step(1); },
      k: function () { step(-1); }, ArrowUp: function () { step(-1); },
      h: function () { sideways(-1); }, ArrowLeft: function () { sideways(-1); },
      l: function () { sideways(1); }, ArrowRight: function () { sideways(1); },
      r: reveal,
      x: function () { if (canTriage) toggleSelected(); },
      a: function () { act(targets(), "assign", "me"); },
      A: function () { if (canTriage) assignSomeone(); },
      e: function () { act(targets(), "dismiss", ""); },
      m: openMove,
      "?": function () { showDialog(helpDialog); },
      "/": function () { document.getElementById("f-q").focus(); },
      Escape: function () { if (selectedIds().length) clearSelection(); }
    };
    ["0", "1", "2", "3", "4"].forEach(function (digit) {
      keys[digit] = function () { act(targets(), "priority", "P" + digit); };
    });
    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
      if (openDialog() || typing(event.target)) return;
      if (event.key === "Enter") {
        var card = event.target.closest && event.target.closest(".card");
        if (card && event.target === card) {
          event.preventDefault();
          window.location.assign(card.dataset.href);
        }
        return;
      }
      var handler = keys[event.key];
      if (!handler) return;
      // Arrow keys keep their usual job on links and buttons outside the columns.
      if (event.key.indexOf("Arrow") === 0 && !activeCardFocused()) return;
      event.preventDefault();
      handler();
    });
    function activeCardFocused() {
      var el = document.activeElement;
      return el && el.closest && !!el.closest("#columns .card");
    }

    // --- filters and preferences submit themselves when a choice changes ---------------------
    document.addEventListener("change", function (event) {
      var form = event.target.form;
      if (!form || !form.hasAttribute("data-autosubmit")) return;
      if (event.target.type === "checkbox" || event.target.tagName === "SELECT") form.requestSubmit();
    });

    // A filter URL names only the filters in use: shorter to share, and the same view is
    // the same address.
    var filterForm = document.getElementById("board-filters");
    if (filterForm) {
      filterForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var params = new URLSearchParams();
        new FormData(filterForm).forEach(function (value, key) {
          if (typeof value === "string" && value.trim() !== "") params.append(key, value.trim());
        });
        var query = params.toString();
        window.location.assign(filterForm.action + (query ? "?" + query : ""));
      });
    }

    // --- new reports arrive without a reload --------------------------------------------------
    var timer = null;
    function schedule() {
      clearTimeout(timer);
      if (!document.hidden) timer = setTimeout(poll, pollMs);
    }
    function poll() {
      var columns = columnsEl();
      if (!columns || document.hidden) return;
      var query = columns.dataset.query;
      var url = board.dataset.arrivalsUrl + "?after=" + encodeURIComponent(columns.dataset.newest) +
        (query ? "&" + query : "");
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : { count: 0 }; })
        .then(function (data) {
          // Not while the person is mid-gesture: the next poll picks the arrivals up.
          if (data.count > 0 && !busy && !dragging && !openDialog()) return refresh(data.count);
        })
        .catch(function () { /* offline for a moment: try again next time */ })
        .then(schedule);
    }
    function refresh(count) {
      var query = columnsEl().dataset.query;
      busy = true;
      working(true);
      pending = { markNew: true, message: count === 1 ? "1 new report." : count + " new reports." };
      return window.htmx.ajax("GET", board.dataset.boardUrl + (query ? "?" + query : ""), {
        target: "#columns", swap: "outerHTML", headers: { Accept: JSON_FIRST }
      }).then(done, done);
    }
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) clearTimeout(timer);
      else poll();
    });

    // On a phone the filters fold away (unless one of them needs fixing).
    var filterBox = document.querySelector(".filter-box");
    var narrow = window.matchMedia("(max-width: 47.99rem)");
    function fold() {
      if (!filterBox) return;
      filterBox.open = !narrow.matches || !!filterBox.querySelector("[aria-invalid]");
    }
    narrow.addEventListener("change", fold);
    fold();

    rovingStop();
    updateSelection();
    schedule();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
