// closeloop pages: small enhancements only; every page works without this file.
(function () {
  "use strict";
  document.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });

  // Village first, then its micro grids: keep the full list and show one village's part.
  var village = document.getElementById("village");
  var grid = document.getElementById("grid");
  var show = null;
  var groups = [];
  if (village && grid) {
    var placeholder = grid.options[0].cloneNode(true);
    groups = Array.prototype.map.call(grid.querySelectorAll("optgroup"), function (g) {
      return g.cloneNode(true);
    });
    var chosen = grid.value;
    show = function (code, keep) {
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

  // "Use my location": the coordinates, then the grid there, chosen in the pickers for the
  // reporter to confirm (or change). Outside every grid, the pickers stay as they were.
  var locate = document.getElementById("locate");
  if (locate) {
    var status = document.getElementById("locate-status");
    var located = document.getElementById("located");
    if (!navigator.geolocation) { locate.hidden = true; }
    var choose = function (found) {
      var owner = null;
      groups.forEach(function (g) {
        Array.prototype.forEach.call(g.querySelectorAll("option"), function (o) {
          if (o.value === found.code) { owner = g.getAttribute("data-small"); }
        });
      });
      if (owner && show) {
        village.value = owner;
        show(owner, found.code);
        grid.required = true;
      } else if (grid) {
        grid.required = false;  // a grid above the pickers: the server routes by the point
      }
      var names = found.path.slice(1).map(function (p) { return p.name; }).join(" / ");
      located.textContent = located.getAttribute("data-found").replace("{name}", names || found.name);
      located.className = "located";
      located.setAttribute("data-code", found.code);
      located.hidden = false;
    };
    locate.addEventListener("click", function () {
      located.hidden = true;
      if (status) { status.textContent = locate.getAttribute("data-busy"); }
      locate.textContent = locate.getAttribute("data-busy");
      var label = locate.getAttribute("data-label") || locate.textContent;
      navigator.geolocation.getCurrentPosition(function (pos) {
        var lat = pos.coords.latitude.toFixed(6), lon = pos.coords.longitude.toFixed(6);
        document.getElementById("lat").value = lat;
        document.getElementById("lon").value = lon;
        if (status) { status.textContent = locate.getAttribute("data-ok"); }
        locate.textContent = locate.getAttribute("data-ok");
        var url = locate.getAttribute("data-url") + "?lat=" + lat + "&lon=" + lon;
        fetch(url, { headers: { "Accept": "application/json" } }).then(function (r) {
          return r.ok ? r.json() : null;
        }).then(function (found) {
          if (found) { choose(found); return; }
          located.textContent = located.getAttribute("data-outside");
          located.className = "located outside";
          located.hidden = false;
        }).catch(function () { locate.textContent = label; });
      }, function () {
        if (status) { status.textContent = locate.getAttribute("data-fail"); }
        locate.textContent = locate.getAttribute("data-fail");
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
