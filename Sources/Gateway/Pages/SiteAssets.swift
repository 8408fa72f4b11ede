/// The site's stylesheet and its one script, served from `/assets/` (no CDN, no font, nothing inline).
enum SiteAssets {
    static let css = """
        :root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#57606a;--line:#d0d7de;--accent:#0550ae;--bar:#3b6fb6;--new:#fff8c5}
        @media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9da7b3;--line:#30363d;--accent:#6cb6ff;--bar:#4f8fd6;--new:#3b2e00}}
        *{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
        a{color:var(--accent)}a:focus,button:focus,input:focus{outline:3px solid var(--accent);outline-offset:2px}
        .skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:var(--bg);padding:.5rem}
        header{border-bottom:1px solid var(--line);padding:.75rem 1rem}header nav{display:flex;flex-wrap:wrap;gap:1rem;align-items:baseline}
        .brand{font-weight:700;margin-right:auto;text-decoration:none;color:var(--fg)}nav a[aria-current]{font-weight:700}
        main{max-width:72rem;margin:0 auto;padding:1rem}footer{color:var(--muted);font-size:.875rem;padding:1rem;border-top:1px solid var(--line)}
        .lead{color:var(--muted)}.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;margin:1rem 0}
        caption{text-align:left;color:var(--muted);padding-bottom:.25rem}th,td{padding:.4rem .5rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
        thead th{border-bottom:2px solid var(--line);white-space:nowrap}td.num{text-align:right;font-variant-numeric:tabular-nums}
        tr.baseline{font-style:italic}tr.new{background:var(--new)}
        .filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end}.filters label{display:flex;flex-direction:column;font-size:.875rem}
        input,button{font:inherit;padding:.35rem .5rem}button{cursor:pointer}
        .grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:1rem}dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem}dt{color:var(--muted)}dd{margin:0}
        .chart{margin:1rem 0}.chart svg{max-width:48rem;height:auto}.chart text{fill:var(--fg);font-size:13px}
        .chart .bar{fill:var(--bar)}.chart .whisker{stroke:var(--muted);stroke-width:2}.chart .median{stroke:var(--fg);stroke-width:3}.chart .series{fill:none;stroke:var(--bar);stroke-width:2}
        figcaption{color:var(--muted);font-size:.875rem}.comment{border-left:3px solid var(--line);padding-left:.75rem;margin:.75rem 0}
        .comment h3{font-size:1rem;margin:0}.comment p{white-space:pre-wrap;overflow-wrap:anywhere}code.hash{overflow-wrap:anywhere}
        @media (max-width:40rem){body{font-size:15px}th,td{padding:.3rem}.filters label{width:100%}}
        """

    /// Live updates for the board (progressive: without it the page is complete). It opens the board's WebSocket,
    /// marks rows whose rank changed, adds accepted results as new rows, and says so in a live region. Every value
    /// is set as text, never as markup.
    static let boardScript = #"""
        "use strict";
        (function () {
          const table = document.getElementById("board");
          const live = document.getElementById("live");
          if (!table || !live || !window.WebSocket) return;
          const body = table.tBodies[0];
          const params = new URLSearchParams();
          if (table.dataset.version && table.dataset.version !== "latest") params.set("dataset_version", table.dataset.version);
          if (table.dataset.framework) params.set("framework", table.dataset.framework);
          const scheme = location.protocol === "https:" ? "wss:" : "ws:";
          const socket = new WebSocket(scheme + "//" + location.host + "/api/v1/ws/leaderboard?" + params.toString());
          function cell(row, text, numeric) {
            const td = row.insertCell(-1);
            td.textContent = text;
            if (numeric) td.className = "num";
            return td;
          }
          function rowOf(id) {
            for (const row of body.rows) if (row.dataset.record === id) return row;
            return null;
          }
          for (const row of body.rows) {
            const link = row.querySelector("a[href^='/records/']");
            if (link) row.dataset.record = link.getAttribute("href").slice(9);
          }
          socket.addEventListener("message", function (event) {
            let message;
            try { message = JSON.parse(event.data); } catch (e) { return; }
            if (message.type === "accepted" && message.record) {
              const r = message.record;
              const row = body.insertRow(Math.max(0, Math.min(body.rows.length, (message.rank || 1) - 1)));
              row.className = "new";
              row.dataset.record = r.record_id;
              cell(row, String(message.rank || ""));
              const name = row.insertCell(-1);
              const link = document.createElement("a");
              link.href = "/records/" + encodeURIComponent(r.record_id);
              link.textContent = r.display_name;
              name.appendChild(link);
              cell(row, Number(r.score).toFixed(2), true);
              cell(row, Number(r.tps).toFixed(1), true);
              cell(row, Number(r.results.p50_latency || r.results.avg_latency).toFixed(3), true);
              cell(row, (r.gpu_config.count > 1 ? r.gpu_config.count + "× " : "") + r.gpu_config.name);
              cell(row, r.model_name + " · " + Number(r.model_params).toFixed(1) + " B" + (r.quantization ? " · " + r.quantization : ""));
              cell(row, r.framework);
              cell(row, "0", true);
              cell(row, "0", true);
              cell(row, "");
              live.textContent = "New result: " + r.display_name + " entered at #" + message.rank + ".";
            } else if (message.type === "rank_changed") {
              const row = rowOf(message.record_id);
              if (row) row.cells[0].textContent = String(message.new_rank);
            } else if (message.type === "removed") {
              const row = rowOf(message.record_id);
              if (row) row.remove();
              live.textContent = "A result left the board.";
            }
          });
        })();
        """#
}
