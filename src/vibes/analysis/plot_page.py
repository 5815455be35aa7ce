"""The HTML page of ``vibes plot``: one file holding the points as JSON and the script that
draws them on a canvas (pan, zoom, hover, legend). Nothing is fetched from anywhere.

The data sits in a ``<script type="application/json">`` block, in which every ``<``, ``>``
and ``&`` is written as a JSON ``\\u`` escape: no text from the collection (an item reading
``</script><script>...``) can close the block or open a comment, and the script shows
texts through ``textContent`` only, never as HTML.
"""

from __future__ import annotations

import html
import re
from typing import Any

from ..jsontext import script_json

__all__ = ["render_page", "script_json"]


def render_page(title: str, data: dict[str, Any]) -> str:
    """The whole page for ``data`` (see :func:`vibes.analysis.plot._page_data`)."""
    values = {"TITLE": html.escape(title), "DATA": script_json(data)}
    # One pass, so that a title reading "@@DATA@@" stays text.
    return re.sub(r"@@(TITLE|DATA)@@", lambda match: values[match.group(1)], PAGE)


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="vibes plot">
<title>@@TITLE@@</title>
<style>
html, body { margin: 0; height: 100%; overflow: hidden; background: #fff; color: #222;
  font: 13px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
#map { display: block; width: 100%; height: 100%; cursor: grab; touch-action: none; }
#map.dragging { cursor: grabbing; }
#head { position: absolute; top: 8px; left: 12px; right: 280px; pointer-events: none; }
#head h1 { font-size: 16px; margin: 0; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
#head p { margin: 2px 0 0; color: #555; }
#legend { position: absolute; top: 8px; right: 8px; max-width: 260px;
  max-height: calc(100% - 70px); overflow: auto; background: rgba(255, 255, 255, .92);
  border: 1px solid #ddd; border-radius: 4px; padding: 6px 8px; }
#legend:empty { display: none; }
#legend .key { font-weight: 600; margin-bottom: 4px; }
#legend .entry { display: flex; align-items: center; gap: 6px; cursor: pointer;
  user-select: none; padding: 1px 0; }
#legend .entry.off { opacity: .35; }
#legend .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#legend .count { color: #888; margin-left: auto; padding-left: 8px; }
#legend .swatch { width: 10px; height: 10px; border-radius: 50%; flex: none; }
#legend .bar { height: 10px; border-radius: 2px; margin: 2px 0; min-width: 160px; }
#legend .ends { display: flex; justify-content: space-between; color: #555; gap: 12px; }
#legend .hint { color: #888; font-size: 11px; margin-top: 4px; }
#controls { position: absolute; left: 12px; bottom: 12px; display: flex; gap: 4px;
  align-items: center; }
#controls button { font: inherit; min-width: 28px; height: 28px; border: 1px solid #bbb;
  border-radius: 4px; background: #fff; cursor: pointer; }
#controls button:hover { background: #f0f0f0; }
#controls span { color: #888; margin-left: 6px; }
#tip { position: absolute; display: none; max-width: 360px; background: #fff;
  border: 1px solid #bbb; border-radius: 4px; padding: 6px 8px; pointer-events: none;
  box-shadow: 0 2px 8px rgba(0, 0, 0, .15); overflow-wrap: anywhere; }
#tip .id { font-weight: 600; }
#tip .group { color: #666; font-size: 12px; }
#tip .text { margin-top: 2px; }
</style>
</head>
<body>
<canvas id="map"></canvas>
<div id="head"><h1 id="title"></h1><p id="subtitle"></p></div>
<div id="legend"></div>
<div id="controls">
  <button id="zoom-in" type="button" title="Zoom in (+)">+</button>
  <button id="zoom-out" type="button" title="Zoom out (-)">&minus;</button>
  <button id="zoom-reset" type="button" title="Show everything (0)">Reset</button>
  <span>drag to pan, scroll to zoom, hover a point for its text</span>
</div>
<div id="tip"><div class="id"></div><div class="group"></div><div class="text"></div></div>
<script type="application/json" id="plot-data">@@DATA@@</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("plot-data").textContent);
  var n = data.id.length;
  var X = Int32Array.from(data.x), Y = Int32Array.from(data.y);
  var L = Int32Array.from(data.layer);
  var layerCount = data.layers.length;
  var hidden = new Uint8Array(layerCount);
  var canvas = document.getElementById("map");
  var ctx = canvas.getContext("2d");
  var tip = document.getElementById("tip");
  document.getElementById("title").textContent = data.title;
  document.getElementById("subtitle").textContent = data.subtitle;
  document.title = data.title;

  // Each layer's points, one batch per colour; the biggest layers are drawn first so
  // that small groups stay visible on top of them.
  var sizes = new Int32Array(layerCount), starts = new Int32Array(layerCount + 1);
  var i, j;
  for (i = 0; i < n; i++) sizes[L[i]]++;
  for (i = 0; i < layerCount; i++) starts[i + 1] = starts[i] + sizes[i];
  var byLayer = new Int32Array(n), fill = starts.slice(0, layerCount);
  for (i = 0; i < n; i++) byLayer[fill[L[i]]++] = i;
  var drawOrder = [];
  for (i = 0; i < layerCount; i++) drawOrder.push(i);
  drawOrder.sort(function (a, b) { return sizes[b] - sizes[a] || a - b; });

  // A grid over the points, so that hovering looks at a few cells, not every point.
  var maxX = 1, maxY = 1;
  for (i = 0; i < n; i++) { if (X[i] > maxX) maxX = X[i]; if (Y[i] > maxY) maxY = Y[i]; }
  var G = 128, cellW = (maxX + 1) / G, cellH = (maxY + 1) / G;
  var cellStart = new Int32Array(G * G + 1), cellItems = new Int32Array(n);
  var cellOf = new Int32Array(n);
  for (i = 0; i < n; i++) {
    cellOf[i] = Math.floor(Y[i] / cellH) * G + Math.floor(X[i] / cellW);
    cellStart[cellOf[i] + 1]++;
  }
  for (i = 0; i < G * G; i++) cellStart[i + 1] += cellStart[i];
  var cellFill = cellStart.slice(0, G * G);
  for (i = 0; i < n; i++) cellItems[cellFill[cellOf[i]]++] = i;
  cellOf = null;

  var width = 1, height = 1, ratio = 1;
  var scale = 1, fitScale = 1, tx = 0, ty = 0;
  var baseRadius = n > 50000 ? 1.1 : n > 10000 ? 1.5 : n > 1000 ? 2.2 : 3.5;
  var alpha = n > 50000 ? 0.55 : n > 10000 ? 0.7 : 0.85;
  var hover = -1, drag = null, pending = false;

  function fit() {
    var legend = document.getElementById("legend");
    var left = 16, top = 64, bottom = 52;
    var right = legend.childNodes.length ? legend.offsetWidth + 24 : 16;
    var w = Math.max(width - left - right, 50), h = Math.max(height - top - bottom, 50);
    // The first view: data.view, the box of every point but a few far-out ones.
    var x0 = data.view[0], y0 = data.view[1];
    var spanX = Math.max(data.view[2] - x0, 1), spanY = Math.max(data.view[3] - y0, 1);
    fitScale = scale = Math.min(w / spanX, h / spanY);
    tx = left + (w - spanX * scale) / 2 - x0 * scale;
    ty = top + (h + spanY * scale) / 2 + y0 * scale;
  }

  function resize() {
    ratio = window.devicePixelRatio || 1;
    width = canvas.clientWidth || 800;
    height = canvas.clientHeight || 600;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    fit();
    draw();
  }

  function radius() {
    return baseRadius * Math.min(3, Math.max(1, Math.sqrt(scale / fitScale)));
  }

  function draw() {
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    var r = radius(), d = 2 * r, round = r >= 2, full = Math.PI * 2;
    ctx.globalAlpha = alpha;
    for (var k = 0; k < drawOrder.length; k++) {
      var layer = drawOrder[k];
      if (hidden[layer]) continue;
      ctx.fillStyle = data.layers[layer];
      ctx.beginPath();
      for (var p = starts[layer]; p < starts[layer + 1]; p++) {
        var q = byLayer[p], px = X[q] * scale + tx, py = ty - Y[q] * scale;
        if (px < -r || py < -r || px > width + r || py > height + r) continue;
        if (round) { ctx.moveTo(px + r, py); ctx.arc(px, py, r, 0, full); }
        else ctx.rect(px - r, py - r, d, d);
      }
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    ctx.font = "600 13px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.lineJoin = "round";
    ctx.lineWidth = 4;
    ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
    ctx.fillStyle = "#111";
    data.labels.forEach(function (label) {
      if (hidden[label.layer]) return;
      var lx = label.x * scale + tx, ly = ty - label.y * scale;
      ctx.strokeText(label.text, lx, ly);
      ctx.fillText(label.text, lx, ly);
    });
    if (hover >= 0) {
      ctx.beginPath();
      ctx.arc(X[hover] * scale + tx, ty - Y[hover] * scale, r + 3, 0, full);
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#111";
      ctx.stroke();
    }
  }

  function schedule() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () { pending = false; draw(); });
  }

  function nearest(mx, my) {
    var reach = radius() + 4;
    var dx = (mx - tx) / scale, dy = (ty - my) / scale, rd = reach / scale;
    var c0 = Math.max(0, Math.floor((dx - rd) / cellW));
    var c1 = Math.min(G - 1, Math.floor((dx + rd) / cellW));
    var r0 = Math.max(0, Math.floor((dy - rd) / cellH));
    var r1 = Math.min(G - 1, Math.floor((dy + rd) / cellH));
    var best = -1, bestDistance = reach * reach + 1e-9;
    for (var row = r0; row <= r1; row++) {
      for (var col = c0; col <= c1; col++) {
        var cell = row * G + col;
        for (var p = cellStart[cell]; p < cellStart[cell + 1]; p++) {
          var q = cellItems[p];
          if (hidden[L[q]]) continue;
          var ex = X[q] * scale + tx - mx, ey = ty - Y[q] * scale - my;
          var distance = ex * ex + ey * ey;
          if (distance < bestDistance) { bestDistance = distance; best = q; }
        }
      }
    }
    return best;
  }

  function showTip(q, mx, my) {
    if (q < 0) { tip.style.display = "none"; return; }
    tip.querySelector(".id").textContent = data.id[q];
    var entry = data.layerEntry[L[q]], group = entry >= 0 ? data.legend[entry].name : "";
    if (data.scale && data.value[q] !== null) {
      group = data.scale.key + ": " + data.value[q].toLocaleString("en");
    }
    tip.querySelector(".group").textContent = group;
    tip.querySelector(".text").textContent = data.text[q];
    tip.style.display = "block";
    var left = mx + 14, top = my + 14;
    if (left + tip.offsetWidth > width - 4) left = Math.max(4, mx - 14 - tip.offsetWidth);
    if (top + tip.offsetHeight > height - 4) top = Math.max(4, my - 14 - tip.offsetHeight);
    tip.style.left = left + "px";
    tip.style.top = top + "px";
  }

  function zoomAt(mx, my, factor) {
    var next = Math.min(fitScale * 5000, Math.max(fitScale * 0.2, scale * factor));
    factor = next / scale;
    scale = next;
    tx = mx - (mx - tx) * factor;
    ty = my - (my - ty) * factor;
    hover = -1;
    tip.style.display = "none";
    schedule();
  }

  function position(event) {
    var box = canvas.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  }

  canvas.addEventListener("pointerdown", function (event) {
    if (event.button !== 0) return;
    var at = position(event);
    drag = { x: at[0], y: at[1], tx: tx, ty: ty };
    try { canvas.setPointerCapture(event.pointerId); } catch (error) { /* not a live pointer */ }
    canvas.classList.add("dragging");
    tip.style.display = "none";
  });
  canvas.addEventListener("pointermove", function (event) {
    var at = position(event);
    if (drag) {
      tx = drag.tx + at[0] - drag.x;
      ty = drag.ty + at[1] - drag.y;
      schedule();
      return;
    }
    var found = nearest(at[0], at[1]);
    if (found !== hover) { hover = found; schedule(); }
    showTip(found, at[0], at[1]);
  });
  function endDrag() { drag = null; canvas.classList.remove("dragging"); }
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);
  canvas.addEventListener("pointerleave", function () {
    if (drag) return;
    hover = -1;
    tip.style.display = "none";
    schedule();
  });
  canvas.addEventListener("wheel", function (event) {
    event.preventDefault();
    var at = position(event), step = event.deltaMode ? 0.05 : 0.002;
    zoomAt(at[0], at[1], Math.exp(-event.deltaY * step));
  }, { passive: false });
  document.getElementById("zoom-in").onclick = function () {
    zoomAt(width / 2, height / 2, 1.6);
  };
  document.getElementById("zoom-out").onclick = function () {
    zoomAt(width / 2, height / 2, 1 / 1.6);
  };
  function reset() { fit(); hover = -1; tip.style.display = "none"; schedule(); }
  document.getElementById("zoom-reset").onclick = reset;
  window.addEventListener("keydown", function (event) {
    if (event.key === "+" || event.key === "=") zoomAt(width / 2, height / 2, 1.6);
    else if (event.key === "-") zoomAt(width / 2, height / 2, 1 / 1.6);
    else if (event.key === "0") reset();
  });
  window.addEventListener("resize", resize);

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function number(value) {
    return Number.isInteger(value) ? value.toLocaleString("en")
      : String(Number(value.toPrecision(4)));
  }

  function buildLegend() {
    var legend = document.getElementById("legend");
    if (data.scale) {
      legend.appendChild(element("div", "key", data.scale.key));
      var bar = element("div", "bar");
      bar.style.background = "linear-gradient(to right, " + data.scale.stops.join(", ") + ")";
      legend.appendChild(bar);
      var ends = element("div", "ends");
      ends.appendChild(element("span", "", number(data.scale.min)));
      ends.appendChild(element("span", "", number(data.scale.max)));
      legend.appendChild(ends);
    }
    var rows = [];
    data.legend.forEach(function (entry, number) {
      var row = element("div", "entry");
      var swatch = element("span", "swatch");
      swatch.style.background = entry.color;
      row.appendChild(swatch);
      var name = element("span", "name", entry.name);
      name.title = entry.name;
      row.appendChild(name);
      row.appendChild(element("span", "count", entry.count.toLocaleString("en")));
      row.addEventListener("click", function (event) {
        // Shift-click shows this group alone (or everything again).
        var alone = event.shiftKey;
        var solo = alone && data.layerEntry.every(function (owner, layer) {
          return (owner === number) === !hidden[layer];
        });
        data.layerEntry.forEach(function (owner, layer) {
          if (alone) hidden[layer] = solo ? 0 : owner === number ? 0 : 1;
          else if (owner === number) hidden[layer] = hidden[layer] ? 0 : 1;
        });
        rows.forEach(function (other, index) {
          var off = data.layerEntry.some(function (owner, layer) {
            return owner === index && hidden[layer];
          });
          other.classList.toggle("off", off);
        });
        hover = -1;
        tip.style.display = "none";
        schedule();
      });
      rows.push(row);
      legend.appendChild(row);
    });
    if (rows.length > 1) {
      legend.appendChild(element("div", "hint", "click: hide or show; shift-click: only this"));
    }
  }

  buildLegend();
  resize();
  // For scripts that drive the page (benchmarks, tests).
  window.vibesPlot = { points: n, draw: draw, zoomAt: zoomAt, nearest: nearest,
    hidden: hidden, screen: function (q) { return [X[q] * scale + tx, ty - Y[q] * scale]; } };
})();
</script>
</body>
</html>
"""
