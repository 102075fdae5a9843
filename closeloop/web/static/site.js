// closeloop pages: small enhancements only; every page works without this file.
(function () {
  "use strict";
  document.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });

  // Village first, then its micro grids: keep the full list and show one village's part.
  var village = document.getElementById("village");
  var grid = document.getElementById("grid");
  if (village && grid) {
    var placeholder = grid.options[0].cloneNode(true);
    var groups = Array.prototype.map.call(grid.querySelectorAll("optgroup"), function (g) {
      return g.cloneNode(true);
    });
    var chosen = grid.value;
    var show = function (code, keep) {
      grid.innerHTML = "";
      grid.appendChild(placeholder.cloneNode(true));
      groups.forEach(function (g) {
        if (g.getAttribute("data-small") === code) {
          var copy = g.cloneNode(true);
          grid.appendChild(copy);
        }
      });
      if (keep) { grid.value = keep; }
      else if (code) { grid.selectedIndex = 1; }
    };
    if (chosen) {
      var sel = grid.options[grid.selectedIndex];
      var owner = sel && sel.parentNode.getAttribute("data-small");
      if (owner) { village.value = owner; show(owner, chosen); }
    } else {
      show("", "");
    }
    village.addEventListener("change", function () { show(village.value, ""); });
  }

  // "Use my location" fills the coordinate fields.
  var locate = document.getElementById("locate");
  if (locate) {
    var status = document.getElementById("locate-status");
    if (!navigator.geolocation) { locate.hidden = true; }
    locate.addEventListener("click", function () {
      status.textContent = locate.getAttribute("data-busy");
      navigator.geolocation.getCurrentPosition(function (pos) {
        document.getElementById("lat").value = pos.coords.latitude.toFixed(6);
        document.getElementById("lon").value = pos.coords.longitude.toFixed(6);
        status.textContent = locate.getAttribute("data-ok");
      }, function () {
        status.textContent = locate.getAttribute("data-fail");
      }, { enableHighAccuracy: true, timeout: 15000 });
    });
  }

  // Copy the follow-up link.
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    if (!navigator.clipboard) { btn.hidden = true; return; }
    btn.addEventListener("click", function () {
      navigator.clipboard.writeText(btn.getAttribute("data-copy")).then(function () {
        btn.textContent = btn.getAttribute("data-done");
      });
    });
  });

  // A form sent once: no double submission from an impatient second tap.
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var btn = form.querySelector("button[type=submit]");
      if (btn) { setTimeout(function () { btn.disabled = true; }, 0); }
    });
  });
})();
