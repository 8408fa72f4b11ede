import Mustache

/// The site's Mustache templates (docs/GATEWAY.md, "Web pages"). Every value goes through `{{…}}`, which escapes it
/// for HTML; the one exception is `{{{svg}}}`, markup ``SiteCharts`` builds from escaped pieces. Names people chose
/// sit in `<bdi>`, so a bidirectional override in one cannot reorder the text around it.
enum SiteTemplates {
    static let library: MustacheLibrary? = {
        var library = MustacheLibrary()
        for (name, text) in templates {
            guard (try? library.register(text, named: name)) != nil else { return nil }
        }
        return library
    }()

    static let templates: [(String, String)] = [
        ("head", head), ("foot", foot), ("board", board), ("record", record), ("compare", compare), ("stats", stats),
        ("datasets", datasets), ("problem", problem), ("rows", rows), ("message", message),
    ]

    static let head = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · LLM Inference Leaderboard</title>
        <link rel="stylesheet" href="/assets/site.css">
        </head><body>
        <a class="skip" href="#main">Skip to content</a>
        <header><nav aria-label="Site"><a class="brand" href="/">LLM Inference Leaderboard</a>
        <a href="/"{{#nav_board}} aria-current="page"{{/nav_board}}>Board</a>
        <a href="/stats"{{#nav_stats}} aria-current="page"{{/nav_stats}}>Statistics</a>
        <a href="/datasets"{{#nav_datasets}} aria-current="page"{{/nav_datasets}}>Datasets</a>
        <a href="/openapi.json">API</a></nav></header>
        <main id="main">
        """

    static let foot = """
        </main>
        <footer><p>Scores are computed by the server (docs/SCORING.md); results are validated before they are ranked.
        Data as JSON: <a href="/openapi.json">the API</a>.</p></footer>
        </body></html>
        """

    /// A board's rows, shared by the board and the comparison.
    static let rows = """
        {{#records}}<tr{{#baseline}} class="baseline"{{/baseline}}>
        <td>{{rank}}</td><td><a href="/records/{{record_id}}"><bdi>{{display_name}}</bdi></a></td>
        <td class="num">{{score}}</td><td class="num">{{tps}}</td><td class="num">{{latency}}</td>
        <td><bdi>{{gpu}}</bdi></td><td><bdi>{{model}}</bdi></td><td>{{framework}}</td>
        <td class="num">{{likes}}</td><td class="num">{{comments}}</td>
        <td><input type="checkbox" name="records" value="{{record_id}}" form="compare" aria-label="Compare {{display_name}}"></td>
        </tr>{{/records}}
        """

    static let board = """
        {{> head}}
        <h1>{{heading}}</h1>
        <p class="lead">Dataset version <strong>{{version}}</strong>: {{total}} ranked result(s).
        <span id="live" role="status" aria-live="polite"></span></p>
        <form class="filters" method="get" action="/" aria-label="Filter the board">
        <label>Framework <input name="framework" value="{{filter_framework}}" list="frameworks"></label>
        <label>GPU <input name="gpu" value="{{filter_gpu}}"></label>
        <label>Model <input name="model" value="{{filter_model}}"></label>
        <label>Quantization <input name="quantization" value="{{filter_quantization}}" list="precisions"></label>
        <label>Model size from (B) <input name="model_params_min" inputmode="decimal" value="{{filter_min}}"></label>
        <label>to (B) <input name="model_params_max" inputmode="decimal" value="{{filter_max}}"></label>
        <label>Dataset version <input name="dataset_version" value="{{filter_version}}"></label>
        <button type="submit">Filter</button> <a href="/">Clear</a>
        <datalist id="frameworks">{{#frameworks}}<option value="{{.}}">{{/frameworks}}</datalist>
        <datalist id="precisions"><option value="fp32"><option value="bf16"><option value="fp16"><option value="fp8">
        <option value="int8"><option value="int4"><option value="q8"><option value="q4"></datalist>
        </form>
        <form id="compare" method="get" action="/compare"></form>
        <div class="scroll"><table id="board" data-version="{{version}}" data-framework="{{filter_framework}}">
        <caption>{{#sorted_by_tps}}Sorted by tokens per second; the rank is the board's.{{/sorted_by_tps}}{{#sorted_by_score}}Ranked by score.{{/sorted_by_score}} Select rows to compare them.</caption>
        <thead><tr><th scope="col">Rank</th><th scope="col">System</th>
        <th scope="col"{{#sorted_by_score}} aria-sort="descending"{{/sorted_by_score}}><a href="{{sort_score}}">Score</a></th>
        <th scope="col"{{#sorted_by_tps}} aria-sort="descending"{{/sorted_by_tps}}><a href="{{sort_tps}}">Tokens/s</a></th>
        <th scope="col">Latency p50 (s)</th><th scope="col">GPU</th>
        <th scope="col">Model</th><th scope="col">Framework</th><th scope="col">Likes</th>
        <th scope="col">Comments</th><th scope="col">Compare</th></tr></thead>
        <tbody>{{> rows}}{{^records}}<tr><td colspan="11">No ranked results match.</td></tr>{{/records}}</tbody>
        </table></div>
        <p><button type="submit" form="compare">Compare selected</button>
        {{#next}}<a rel="next" href="{{next}}">Next page</a>{{/next}}</p>
        {{#has_baselines}}<h2>Reference results</h2><p>Marked by operators; shown beside the board, never ranked.</p>
        <div class="scroll"><table><thead><tr><th scope="col">Rank</th><th scope="col">System</th><th scope="col">Score</th>
        <th scope="col">Tokens/s</th><th scope="col">Latency p50 (s)</th><th scope="col">GPU</th><th scope="col">Model</th>
        <th scope="col">Framework</th><th scope="col">Likes</th><th scope="col">Comments</th><th scope="col">Compare</th>
        </tr></thead><tbody>{{#baselines}}{{> rows}}{{/baselines}}</tbody></table></div>{{/has_baselines}}
        <script src="/assets/board.js"></script>
        {{> foot}}
        """

    static let record = """
        {{> head}}
        <h1><bdi>{{display_name}}</bdi></h1>
        <p class="lead">{{#rank}}#{{rank}} on the {{version}} board, {{/rank}}score <strong>{{score}}</strong>
        ({{percentile}}), submitted {{submitted_at}}.</p>
        <div class="grid">
        <section aria-labelledby="system"><h2 id="system">System</h2><dl>
        <dt>GPU</dt><dd><bdi>{{gpu}}</bdi>{{#gpu_model}} ({{gpu_model}}){{/gpu_model}}</dd>
        <dt>Model</dt><dd><bdi>{{model}}</bdi></dd><dt>Parameters</dt><dd>{{params}} B</dd>
        <dt>Quantization</dt><dd>{{quantization}}</dd><dt>Framework</dt><dd>{{framework}}</dd>
        <dt>Concurrency</dt><dd>{{concurrency}}</dd><dt>Dataset version</dt><dd>{{version}}</dd></dl></section>
        <section aria-labelledby="figures"><h2 id="figures">Figures</h2><dl>
        <dt>Tokens per second</dt><dd>{{tps}}</dd><dt>Latency mean / p50 / p95 / p99 (s)</dt><dd>{{latencies}}</dd>
        <dt>Requests</dt><dd>{{requests}}</dd><dt>Generated tokens</dt><dd>{{tokens}}</dd>
        <dt>Duration (s)</dt><dd>{{duration}}</dd><dt>Validation</dt><dd>{{validation}}</dd></dl></section>
        </div>
        <section aria-labelledby="series"><h2 id="series">The run</h2>
        {{#has_series}}{{{tps_series_svg}}}{{{gpu_series_svg}}}{{/has_series}}
        {{^has_series}}<p>This result came without live metric reports (an uploaded result file).</p>{{/has_series}}
        </section>
        <section aria-labelledby="charts"><h2 id="charts">Score and latency</h2>{{{score_svg}}}{{{latency_svg}}}</section>
        <section aria-labelledby="reactions"><h2 id="reactions">Reactions</h2>
        <p>{{likes}} like(s), {{dislikes}} dislike(s). Reactions and comments are sent by signed benchmark clients
        (<code>leaderboard client</code>), so each device counts once; anyone may report a result below.</p></section>
        <section aria-labelledby="comments-heading"><h2 id="comments-heading">Comments ({{comments_count}})</h2>
        {{#comments}}<article class="comment"><h3><bdi>{{author}}</bdi> <time>{{created_at}}</time></h3>
        <p>{{content}}</p></article>{{/comments}}{{^comments}}<p>No comments yet.</p>{{/comments}}</section>
        <section aria-labelledby="similar-heading"><h2 id="similar-heading">Similar systems</h2>
        {{#has_similar}}<ul>{{#similar}}<li><a href="/records/{{record_id}}"><bdi>{{display_name}}</bdi></a>:
        score {{score}}, {{tps}} tokens/s on <bdi>{{gpu}}</bdi></li>{{/similar}}</ul>{{/has_similar}}
        {{^has_similar}}<p>None yet.</p>{{/has_similar}}
        <p><a href="/compare?records={{compare_ids}}">Compare with these</a></p></section>
        <section aria-labelledby="flag-heading"><h2 id="flag-heading">Report this result</h2>
        <form method="post" action="/records/{{record_id}}/flag">
        <label for="reason">If this result looks wrong, say why; an operator reviews every report.</label>
        <input id="reason" name="reason" required minlength="3" maxlength="500">
        <button type="submit">Flag this result</button></form></section>
        {{> foot}}
        """

    static let compare = """
        {{> head}}
        <h1>Comparison</h1>
        <div class="scroll"><table><caption>The selected results side by side.</caption>
        <thead><tr><th scope="col">Figure</th>{{#columns}}<th scope="col"><a href="/records/{{record_id}}"><bdi>{{display_name}}</bdi></a></th>{{/columns}}</tr></thead>
        <tbody>{{#lines}}<tr><th scope="row">{{label}}</th>{{#values}}<td>{{.}}</td>{{/values}}</tr>{{/lines}}</tbody>
        </table></div>
        <section aria-labelledby="charts"><h2 id="charts">Charts</h2>{{{tps_svg}}}{{{score_svg}}}{{{latency_svg}}}</section>
        {{> foot}}
        """

    static let stats = """
        {{> head}}
        <h1>Statistics</h1>
        <p class="lead">Dataset version <strong>{{version}}</strong>: {{records}} ranked result(s) from {{devices}}
        device(s); {{today}} submission(s) today. Score: median {{score_median}}, middle half {{score_iqr}}.</p>
        <form method="get" action="/stats"><label>Dataset version <input name="dataset_version" value="{{version}}"></label>
        <button type="submit">Show</button></form>
        {{#sections}}<section aria-labelledby="{{id}}"><h2 id="{{id}}">Tokens per second by {{what}}</h2>{{{svg}}}
        <div class="scroll"><table><caption>Ranked results per {{what}}: tokens per second and score.</caption>
        <thead><tr><th scope="col">{{what}}</th><th scope="col">Results</th><th scope="col">Tokens/s min</th>
        <th scope="col">p25</th><th scope="col">Median</th><th scope="col">p75</th><th scope="col">Max</th>
        <th scope="col">Median score</th></tr></thead>
        <tbody>{{#groups}}<tr><th scope="row"><bdi>{{key}}</bdi></th><td class="num">{{count}}</td><td class="num">{{min}}</td>
        <td class="num">{{p25}}</td><td class="num">{{p50}}</td><td class="num">{{p75}}</td><td class="num">{{max}}</td>
        <td class="num">{{score}}</td></tr>{{/groups}}</tbody></table></div></section>{{/sections}}
        {{> foot}}
        """

    static let datasets = """
        {{> head}}
        <h1>Datasets</h1>
        <p class="lead">Benchmarks run on versioned, encrypted test datasets. A registered device downloads and
        decrypts one with <code>leaderboard client datasets download</code> (chunked AES-GCM, resumable); a
        DeepStressModel client gets an offline package (docs/DEEPSTRESSMODEL.md).</p>
        <div class="scroll"><table><caption>Active versions, newest first.</caption>
        <thead><tr><th scope="col">Version</th><th scope="col">Name</th><th scope="col">Description</th>
        <th scope="col">Size</th><th scope="col">Chunks</th><th scope="col">SHA-256 of the plaintext</th>
        <th scope="col">Activated</th></tr></thead>
        <tbody>{{#versions}}<tr><td><a href="/?dataset_version={{version}}">{{version}}</a></td><td><bdi>{{name}}</bdi></td>
        <td>{{description}}</td><td class="num">{{size}}</td><td class="num">{{chunks}}</td>
        <td><code class="hash">{{checksum}}</code></td><td>{{activated_at}}</td></tr>{{/versions}}
        {{^versions}}<tr><td colspan="7">No active dataset yet.</td></tr>{{/versions}}</tbody></table></div>
        {{> foot}}
        """

    static let message = """
        {{> head}}
        <h1>{{title}}</h1><p>{{detail}}</p><p><a href="{{back}}">Back</a></p>
        {{> foot}}
        """

    static let problem = """
        {{> head}}
        <h1>{{title}}</h1><p>{{detail}}</p><p><a href="/">Back to the board</a></p>
        {{> foot}}
        """
}
