"""The self-contained HTML timeline of a recorded run (``hazmat show RUN --html``).

One file, no network: CSS and JavaScript are inline, nothing is fetched. Each
episode is a ``<section id="ep-<episode_id>">`` with a progress bar on which the
milestones are marked, and its steps are collapsible ``<details
id="ep-<episode_id>-step-<n>">`` (closed by default, the halting step open and
highlighted). Expanding a step shows the model message, the call, the policy
decisions with rules and evidence, and the full output (blobs resolved; outputs
cut for the model are whole here, up to :data:`HTML_OUTPUT_CAP` per stream).
A search box filters the steps (``#search=TEXT`` in the URL does the same); a
URL fragment naming a step opens it.

Reuse (the capability-run report links into these timelines)::

    from hazmat.replay.html import write_html, step_anchor, TIMELINE_FILE
    path = write_html(run_dir)                          # run_dir/timeline.html
    href = f"{TIMELINE_FILE}#{step_anchor('ep0003', 4)}"

or embed :func:`episode_section` fragments in another page that includes
:data:`STYLE` and :data:`SCRIPT`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from hazmat.errors import RecordError
from hazmat.replay.timeline import ShowFilter, select_steps, step_output
from hazmat.replay.trace import EpisodeTrace, RunTrace, Step, Turn, load_run

__all__ = [
    "HTML_OUTPUT_CAP",
    "SCRIPT",
    "STYLE",
    "TIMELINE_FILE",
    "episode_anchor",
    "episode_section",
    "render_html",
    "step_anchor",
    "write_html",
]

TIMELINE_FILE = "timeline.html"
"""Default file name of the timeline inside a run directory."""

HTML_OUTPUT_CAP = 2 * 1024 * 1024
"""Characters of one output stream put into the page; the rest is named, not shown."""


def episode_anchor(episode_id: str) -> str:
    """The element id of an episode's section (``ep-<episode_id>``)."""
    return f"ep-{_slug(episode_id)}"


def step_anchor(episode_id: str, step: int) -> str:
    """The element id of one step (``ep-<episode_id>-step-<n>``)."""
    return f"{episode_anchor(episode_id)}-step-{step}"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


STYLE = """
:root{--fg:#1d1f23;--dim:#6b7280;--bg:#fafafa;--card:#fff;--line:#e5e7eb;--red:#b91c1c;
--redbg:#fef2f2;--yellow:#a16207;--green:#15803d;--cyan:#0e7490;--blue:#1d4ed8;--mag:#a21caf}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;
color:var(--fg);background:var(--bg)}
header{position:sticky;top:0;z-index:2;background:#111827;color:#f9fafb;padding:10px 18px;
display:flex;gap:14px;align-items:center;flex-wrap:wrap}
header h1{font-size:16px;margin:0;font-weight:600}header .meta{color:#d1d5db;font-size:13px}
header input{margin-left:auto;min-width:260px;padding:5px 8px;border-radius:5px;border:0}
header button{padding:4px 8px;border-radius:5px;border:0;cursor:pointer}
#count{color:#d1d5db;font-size:12px}
main{padding:12px 18px;max-width:1200px;margin:0 auto}
.warn{background:var(--redbg);color:var(--red);border:1px solid #fecaca;padding:8px 12px;
border-radius:6px;margin:8px 0}
section.episode{background:var(--card);border:1px solid var(--line);border-radius:8px;
padding:12px 16px;margin:14px 0}
section.episode.halted{border:2px solid var(--red)}
section.episode h2{font-size:15px;margin:0 0 6px}
.tag{display:inline-block;padding:0 6px;border-radius:4px;font-size:12px;font-weight:600;
background:#eef2ff;color:var(--blue);margin-left:4px}
.tag.halted,.tag.halt{background:var(--red);color:#fff}.tag.block{background:#fef3c7;color:var(--yellow)}
.tag.log{background:#ecfeff;color:var(--cyan)}.tag.error{background:#fae8ff;color:var(--mag)}
.tag.limit,.tag.interrupted{background:#fef3c7;color:var(--yellow)}
.tag.completed,.tag.submitted,.tag.allow{background:#dcfce7;color:var(--green)}
dl.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:2px 16px;
margin:4px 0 10px;font-size:13px}dl.meta div{display:flex;gap:6px}dl.meta dt{color:var(--dim)}
dl.meta dd{margin:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.progress{position:relative;height:26px;margin:18px 0 24px;background:#f3f4f6;border-radius:13px}
.progress .fill{position:absolute;left:0;top:0;bottom:0;background:#bbf7d0;border-radius:13px}
.progress .ms{position:absolute;top:-14px;transform:translateX(-50%);font-size:11px;
color:var(--green);white-space:nowrap;text-align:center}
.progress .ms i{display:block;margin:2px auto 0;width:12px;height:12px;border-radius:6px;
background:var(--green);border:2px solid #fff}
.progress .ms.missed{color:var(--dim)}.progress .ms.missed i{background:#d1d5db}
.progress .haltmark{position:absolute;top:0;bottom:0;width:3px;background:var(--red)}
.turn{margin:10px 0 2px;color:var(--blue);font-size:13px}
.turn .content{color:var(--fg);white-space:pre-wrap;margin:2px 0 0 12px}
.turn .reasoning{color:var(--dim);font-style:italic;white-space:pre-wrap;margin:2px 0 0 12px}
.turn .nudge{color:var(--dim);font-style:italic;margin-left:12px}
details.step{border:1px solid var(--line);border-radius:6px;margin:4px 0 4px 12px;background:#fff}
details.step>summary{cursor:pointer;padding:5px 10px;list-style:none;display:flex;gap:8px;
align-items:baseline;overflow:hidden}
details.step>summary::before{content:"\\25B8";color:var(--dim)}
details.step[open]>summary::before{content:"\\25BE"}
details.step>summary .n{font-weight:600;min-width:52px}
details.step>summary .tool{color:var(--cyan);font-weight:600}
details.step>summary code{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;flex:1;
color:#374151}
details.step.halt{border:2px solid var(--red);background:var(--redbg)}
details.step.block{border-left:4px solid var(--yellow)}
details.step.log{border-left:4px solid var(--cyan)}
details.step.target{outline:3px solid var(--blue)}
details.step,section.episode{scroll-margin-top:64px}
details.step .body{padding:6px 12px 10px;border-top:1px solid var(--line)}
pre{background:#0f172a;color:#e2e8f0;padding:8px 10px;border-radius:5px;overflow:auto;
max-height:70vh;white-space:pre-wrap;word-break:break-word;margin:4px 0;font-size:12.5px}
pre.err{background:#2a0f12;color:#fecaca}pre.call{background:#f3f4f6;color:#111827}
.label{color:var(--dim);font-size:12px;margin-top:6px}
.decision{margin:4px 0}.rule{margin:2px 0 2px 16px;font-size:13px}
.rule .ev{display:block;margin-left:12px;color:#374151;font-family:ui-monospace,monospace;
font-size:12px;white-space:pre-wrap}
.milestone{color:var(--green);font-weight:600;margin:4px 0}
.haltbox{border:2px solid var(--red);background:var(--redbg);border-radius:6px;padding:8px 12px;
margin:10px 0}.haltbox b{color:var(--red)}
.other{color:var(--dim);font-size:13px;margin:2px 0 2px 12px}.other.error{color:var(--mag)}
.other.limit{color:var(--yellow)}
.hidden{display:none!important}mark{background:#fde68a}
"""

SCRIPT = """
(function(){
  var steps=Array.prototype.slice.call(document.querySelectorAll('details.step'));
  var q=document.getElementById('q'), count=document.getElementById('count');
  function openTarget(){
    var h=decodeURIComponent((location.hash||'').slice(1));
    if(h.indexOf('search=')===0){ if(q){q.value=h.slice(7); filter();} return; }
    if(!h) return;
    var el=document.getElementById(h);
    if(!el) return;
    if(el.tagName==='DETAILS'){ el.open=true; el.classList.add('target'); }
    if(el.scrollIntoView) el.scrollIntoView({block:'start'});
  }
  function filter(){
    var t=(q&&q.value||'').toLowerCase().trim(), n=0;
    steps.forEach(function(s){
      var hit=!t||s.textContent.toLowerCase().indexOf(t)>=0;
      s.classList.toggle('hidden',!hit);
      if(hit){n++; if(t) s.open=true;}
    });
    document.querySelectorAll('.turn').forEach(function(tn){
      var own=tn.getAttribute('data-steps');
      if(!own){ tn.classList.toggle('hidden',!!t); return; }
      var any=own.split(' ').some(function(id){var e=document.getElementById(id);
        return e&&!e.classList.contains('hidden');});
      tn.classList.toggle('hidden',!any);
    });
    if(count) count.textContent=t?(n+' of '+steps.length+' steps match'):(steps.length+' steps');
    document.body.setAttribute('data-matches',String(n));
  }
  function all(open){ steps.forEach(function(s){ s.open=open; }); }
  if(q) q.addEventListener('input',filter);
  var ex=document.getElementById('expand'), co=document.getElementById('collapse');
  if(ex) ex.addEventListener('click',function(){all(true);});
  if(co) co.addEventListener('click',function(){all(false);});
  window.addEventListener('hashchange',openTarget);
  filter(); openTarget();
  document.body.setAttribute('data-ready','1');
  document.body.setAttribute('data-steps',String(steps.length));
})();
"""


def _capped(text: str) -> tuple[str, str]:
    if len(text) <= HTML_OUTPUT_CAP:
        return text, ""
    rest = len(text) - HTML_OUTPUT_CAP
    return text[:HTML_OUTPUT_CAP], f"... {rest} more characters in the record (hazmat show)"


def _pre(text: str, cls: str = "") -> str:
    body, more = _capped(text)
    out = f'<pre class="{cls}">{_e(body)}</pre>'
    if more:
        out += f'<div class="label">{_e(more)}</div>'
    return out


def _call_summary(step: Step) -> str:
    a = step.args
    if step.tool == "bash" and isinstance(a.get("command"), str):
        return "$ " + str((a["command"].splitlines() or [""])[0])
    if step.tool == "python" and isinstance(a.get("code"), str):
        return ">>> " + str((a["code"].splitlines() or [""])[0])
    return json.dumps(a, ensure_ascii=False, sort_keys=True)[:300]


def _call_body(step: Step) -> str:
    a = dict(step.args)
    if step.tool == "bash" and isinstance(a.get("command"), str):
        return _pre("$ " + a.pop("command"), "call") + (
            _pre(json.dumps(a, ensure_ascii=False, indent=1), "call") if a else ""
        )
    if step.tool == "python" and isinstance(a.get("code"), str):
        return _pre(a.pop("code"), "call") + (
            _pre(json.dumps(a, ensure_ascii=False, indent=1), "call") if a else ""
        )
    return _pre(json.dumps(a, ensure_ascii=False, indent=1, sort_keys=True), "call")


def _decision_html(d: dict[str, Any]) -> str:
    action = str(d.get("action", "allow"))
    out = [
        f'<div class="decision">policy {_e(d.get("stage", ""))}: '
        f'<span class="tag {_e(action)}">{_e(action.upper())}</span> {_e(d.get("reason") or "")}'
        "</div>"
    ]
    for r in d.get("rules") or []:
        if not isinstance(r, dict):
            continue
        ev = f'<span class="ev">evidence: {_e(r["evidence"])}</span>' if r.get("evidence") else ""
        out.append(
            f'<div class="rule"><b>{_e(r.get("rule"))}</b> '
            f'<span class="tag {_e(r.get("action"))}">{_e(r.get("action"))}</span> '
            f"{_e(r.get('severity', ''))} {_e(r.get('title', ''))}{ev}</div>"
        )
    return "".join(out)


def _step_html(run: RunTrace, ep: EpisodeTrace, step: Step) -> str:
    action = step.action
    halt = ep.halt_step == step.step and action == "halt"
    classes = list(dict.fromkeys(["step", action] + (["halt"] if halt else [])))
    r = step.result
    status = ""
    if r is None:
        status = '<span class="tag block">not run</span>'
    elif r.get("exit_code") is not None:
        code = r.get("exit_code")
        status = f'<span class="tag {"allow" if code == 0 else "error"}">exit {_e(code)}</span>'
    tags = "" if action == "allow" else f'<span class="tag {_e(action)}">{_e(action)}</span>'
    stars = "".join(
        f'<span class="tag completed">&#9733; {_e(m.get("id"))}</span>' for m in step.milestones
    )
    summary = (
        f'<summary><span class="n">step {step.step}</span>'
        f'<span class="tool">{_e(step.tool)}</span><code>{_e(_call_summary(step))}</code>'
        f"{tags}{status}{stars}</summary>"
    )
    body = ['<div class="body">', '<div class="label">call</div>', _call_body(step)]
    if step.malformed:
        body.append(
            f'<div class="decision"><span class="tag block">malformed</span> '
            f"{_e(step.malformed)}</div>"
        )
    for d in step.decisions:
        body.append(_decision_html(d))
    if r is not None:
        out, err = step_output(run, step)
        meta = []
        if r.get("duration") is not None:
            meta.append(f"{r['duration']}s")
        if r.get("timed_out"):
            meta.append("timed out")
        if r.get("truncated"):
            meta.append("over the sandbox output cap")
        if r.get("cut_for_model"):
            meta.append(f"the model saw it cut by {r['cut_for_model']} bytes; shown whole here")
        if r.get("submission") is not None:
            meta.append(f"submitted: {r['submission']}")
        label = "stdout" if "stdout" in r else "output"
        body.append(
            f'<div class="label">{label}{" &middot; " if meta else ""}{_e(" · ".join(meta))}</div>'
        )
        body.append(_pre(out, "out"))
        if err:
            body.append('<div class="label">stderr</div>' + _pre(err, "err"))
        if r.get("data"):
            body.append(
                '<div class="label">data</div>'
                + _pre(json.dumps(r["data"], ensure_ascii=False, indent=1), "call")
            )
    for m in step.milestones:
        body.append(
            f'<div class="milestone">&#9733; milestone {_e(m.get("id"))}: '
            f"{_e(m.get('title', ''))}</div>"
        )
    body.append("</div>")
    open_attr = " open" if halt else ""
    return (
        f'<details class="{" ".join(classes)}" id="{step_anchor(ep.episode_id, step.step)}"'
        f' data-step="{step.step}"{open_attr}>{summary}{"".join(body)}</details>'
    )


def _turn_html(ep: EpisodeTrace, turn: Turn) -> str:
    resp = turn.response
    ids = " ".join(step_anchor(ep.episode_id, s.step) for s in turn.steps)
    parts = [f'<div class="turn" data-steps="{ids}"><b>turn {turn.turn}</b> model']
    for n in turn.nudges:
        parts.append(f'<div class="nudge">harness &rarr; model: {_e(n)}</div>')
    if resp.get("reasoning"):
        parts.append(f'<div class="reasoning">{_e(resp["reasoning"])}</div>')
    content = resp.get("content")
    if isinstance(content, list):
        content = "\n".join(
            str(c.get("text", c)) if isinstance(c, dict) else str(c) for c in content
        )
    if content:
        parts.append(f'<div class="content">{_e(content)}</div>')
    parts.append("</div>")
    return "".join(parts)


def _progress_html(ep: EpisodeTrace) -> str:
    end = ep.end or {}
    progress = float(end.get("progress") or 0.0)
    total_steps = max([s.step for s in ep.steps] + [1])
    reached: list[tuple[str, float, str]] = []
    for s in ep.steps:
        for m in s.milestones:
            reached.append((str(m.get("id")), s.step / total_steps, str(m.get("title", ""))))
    for m in ep.final_milestones:
        reached.append((str(m.get("id")), 1.0, str(m.get("title", "")) + " (end checks)"))
    marks = []
    for mid, x, title in reached:
        marks.append(
            f'<span class="ms" style="left:{min(max(x, 0.02), 0.98) * 100:.1f}%" '
            f'title="{_e(title)}">{_e(mid)}<i></i></span>'
        )
    seen = {m[0] for m in reached}
    missing = [str(x) for x in (end.get("milestones_reached") or []) if str(x) not in seen]
    total = end.get("milestones_total")
    halt = ""
    if ep.halt_step is not None:
        halt = (
            f'<span class="haltmark" style="left:{ep.halt_step / total_steps * 100:.1f}%" '
            f'title="halted at step {ep.halt_step}"></span>'
        )
    label = f"progress {progress:.2f}"
    if isinstance(total, int):
        label += f" &middot; {len(seen | set(missing))}/{total} milestones"
    return (
        f'<div class="progress" title="{label}"><div class="fill" '
        f'style="width:{progress * 100:.1f}%"></div>{"".join(marks)}{halt}</div>'
        f'<div class="label">{label}</div>'
    )


def episode_section(run: RunTrace, ep: EpisodeTrace, filt: ShowFilter | None = None) -> str:
    """One episode's timeline as an HTML ``<section>`` (needs :data:`STYLE`/:data:`SCRIPT`);
    with ``filt``, only the steps it selects (as ``hazmat show`` does)."""
    shown = {s.step for s in select_steps(ep, filt)} if filt is not None and filt.active else None
    start = ep.start or {}
    ready = ep.ready or {}
    end = ep.end or {}
    reason = ep.reason
    detail = end.get("detail") or end.get("error") or ""
    meta = [
        ("task", ep.task_id),
        ("agent", ep.agent),
        ("seed", ep.seed),
        ("epoch", start.get("epoch", 0)),
        ("backend", ready.get("backend") or start.get("backend", "?")),
        ("image", ready.get("image_id") or (ready.get("info") or {}).get("image", "-")),
        ("steps", len(ep.steps)),
        ("duration", f"{end.get('duration', '-')}s"),
    ]
    if detail:
        meta.append(("detail", detail))
    dl = "".join(f'<div><dt>{_e(k)}</dt><dd title="{_e(v)}">{_e(v)}</dd></div>' for k, v in meta)
    parts = [
        f'<section class="episode{" halted" if reason == "halted" else ""}" '
        f'id="{episode_anchor(ep.episode_id)}" data-episode="{_e(ep.episode_id)}">',
        f"<h2>episode {_e(ep.episode_id)} &middot; {_e(ep.task_id)} &middot; {_e(ep.agent)} "
        f'<span class="tag {_e(reason)}">{_e(reason)}</span></h2>',
        f'<dl class="meta">{dl}</dl>',
        _progress_html(ep),
    ]
    placed: set[int] = set()
    for turn in ep.turns:
        if shown is not None and not any(s.step in shown for s in turn.steps):
            continue
        parts.append(_turn_html(ep, turn))
        for s in turn.steps:
            if shown is None or s.step in shown:
                parts.append(_step_html(run, ep, s))
            placed.add(s.step)
    for s in ep.steps:
        if s.step not in placed and (shown is None or s.step in shown):
            parts.append(_step_html(run, ep, s))
    for m in ep.final_milestones:
        parts.append(
            f'<div class="milestone">&#9733; milestone {_e(m.get("id"))}: '
            f"{_e(m.get('title', ''))} (found by the end-of-episode checks)</div>"
        )
    for ev in ep.others:
        name = ev.get("event")
        if name in ("limit", "error", "model_error"):
            text = (
                f"limit reached: {ev.get('which')}"
                if name == "limit"
                else f"{name} ({ev.get('kind', ev.get('attempt', ''))}): "
                f"{ev.get('message', ev.get('error', ''))}"
            )
            parts.append(f'<div class="other {_e(name)}">{_e(text)}</div>')
        elif name == "note":
            parts.append(
                f'<div class="other">note ({_e(ev.get("kind"))}): {_e(ev.get("message", ""))}</div>'
            )
    h = ep.halt
    if h is not None:
        rules = [r for r in h.get("rules") or [] if isinstance(r, dict)]
        top = next((r for r in rules if r.get("action") == "halt"), rules[0] if rules else {})
        href = step_anchor(ep.episode_id, int(h.get("step") or 0))
        parts.append(
            f'<div class="haltbox"><b>HALTED BY POLICY</b> at <a href="#{href}">step '
            f"{_e(h.get('step'))}</a> ({_e(h.get('stage'))}): {_e(h.get('reason') or '')}"
            + (
                f'<div class="rule"><b>{_e(top.get("rule"))}</b> {_e(top.get("severity", ""))} '
                f'{_e(top.get("title", ""))}<span class="ev">evidence: '
                f"{_e(top.get('evidence', ''))}</span></div>"
                if top
                else ""
            )
            + "</div>"
        )
    if ep.end is None:
        parts.append(
            '<div class="warn">The record of this episode stops without '
            "episode_end: the run was interrupted.</div>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def render_html(
    run: RunTrace,
    *,
    episode: str | None = None,
    title: str | None = None,
    filt: ShowFilter | None = None,
) -> str:
    """The whole page for a run (or one episode of it).

    Raises:
        ReplayError: ``episode`` is not in the run.
    """
    eps = [run.episode(episode)] if episode is not None else list(run.episodes.values())
    head = title or f"hazmat timeline · run {run.run_id}"
    meta = f"status {run.status}"
    if run.parent_run:
        meta += f" · replay of {run.parent_run}"
    warns = []
    if run.problems:
        p = run.problems[0]
        warns.append(
            f"The record does not verify at line {p.line} ({p.kind}): {p.message}. "
            "Run hazmat verify."
        )
    if run.torn_line is not None:
        warns.append(
            f"The last line ({run.torn_line}) is torn: the writer was killed; "
            f"shown up to seq {run.last_seq}."
        )
    body = "\n".join(episode_section(run, ep, filt) for ep in eps)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{_e(head)}</title><style>{STYLE}</style></head><body>"
        f'<header><h1>{_e(head)}</h1><span class="meta">{_e(meta)}</span>'
        '<input id="q" type="search" placeholder="search commands, outputs, rules...">'
        '<span id="count"></span><button id="expand" type="button">expand all</button>'
        '<button id="collapse" type="button">collapse all</button></header><main>'
        + "".join(f'<div class="warn">{_e(w)}</div>' for w in warns)
        + body
        + f"</main><script>{SCRIPT}</script></body></html>\n"
    )


def write_html(
    run_dir: str | Path, dest: str | Path | None = None, *, episode: str | None = None
) -> Path:
    """Write the timeline page of ``run_dir`` to ``dest`` (default ``run_dir/timeline.html``).

    Raises:
        RecordError: the run cannot be read, or the file cannot be written.
        ReplayError: ``episode`` is not in the run.
    """
    run = load_run(run_dir)
    path = Path(dest) if dest is not None else Path(run_dir) / TIMELINE_FILE
    page = render_html(run, episode=episode)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise RecordError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    return path
