"""Stylesheet and script of the chat UI (passed to Gradio's launch(css=..., head=...)).

Kept in a module rather than loose files so that they travel with the package. The script only handles
clicks on citation markers (links to "#src-..."): it shows and highlights the card they point to. Everything it
touches was built by rag/ui_render.py; it never inserts text into the page.
"""

CSS = """
.gradio-container { max-width: 1560px !important; margin: 0 auto !important; }
footer { display: none !important; }

/* header */
#app-header-block { padding: 0 !important; }
.app-header { display: flex; gap: 14px; align-items: center; padding: 0 4px 2px; }
.app-mark { width: 40px; height: 40px; border-radius: 10px; display: grid; place-items: center; font-size: 22px;
  background: var(--color-accent); color: white; flex: none; }
.app-header h1 { font-size: 20px; margin: 0; font-weight: 650; letter-spacing: -0.01em; }
.app-header p { margin: 2px 0 0; font-size: 13.5px; color: var(--body-text-color-subdued); max-width: 900px; }

/* sidebar */
.side-h h3 { font-size: 13px !important; text-transform: uppercase; letter-spacing: .06em;
  color: var(--body-text-color-subdued) !important; margin: 10px 0 0 !important; }
#index-status ul { padding-left: 0; list-style: none; margin: 0; font-size: 13px; }
#index-status li { margin: 2px 0; }

/* chat */
#chat { border-radius: 12px; }
#chat .placeholder { padding: 18px 22px 6px; font-size: 15px; }
#chat .examples { padding: 0 14px; }
#chat .message-wrap .message, #chat .bot, #chat .user { font-size: 15px; line-height: 1.55; }
#ask-row { align-items: stretch; gap: 8px; }
#ask-row textarea { font-size: 15px; }
#tools-row { gap: 8px; justify-content: flex-start; }
#tools-row > * { flex: 0 0 auto !important; min-width: 0 !important; }
#chat a[href^="#src-"] { display: inline-block; text-decoration: none !important; font-weight: 600; font-size: 0.86em;
  color: var(--color-accent) !important; background: var(--color-accent-soft); border-radius: 5px;
  padding: 0 5px; margin: 0 2px 0 0; white-space: nowrap; cursor: pointer; }
#chat a[href^="#src-"]:hover, #chat a[href^="#src-"]:focus { background: var(--color-accent);
  color: white !important; outline: none; }

/* sources panel */
#sources-col { position: sticky; top: 8px; align-self: flex-start; max-height: max(420px, calc(100vh - 130px));
  overflow-y: auto; padding-right: 4px; }
#side-col { align-self: flex-start; }
.sources-panel { font-size: 14px; line-height: 1.5; }
.sources-title { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; font-weight: 650;
  color: var(--body-text-color-subdued); margin: 2px 0 8px; }
.src-turn { display: none; }
.src-turn.active { display: block; }
.src-turn-head { display: flex; gap: 8px; align-items: baseline; font-weight: 600; margin-bottom: 6px; }
.src-q { flex: none; font-size: 11px; font-weight: 700; color: white; background: var(--neutral-500);
  border-radius: 4px; padding: 1px 6px; }
.src-filters, .src-note { font-size: 12.5px; color: var(--body-text-color-subdued); margin: 2px 0; }
.src-k { font-weight: 650; text-transform: uppercase; font-size: 11px; letter-spacing: .05em; margin-right: 4px; }
.src-h { font-size: 13px; margin: 12px 0 4px; font-weight: 650; }
.src-count { display: inline-block; min-width: 18px; text-align: center; font-size: 11px; border-radius: 9px;
  padding: 0 5px; background: var(--neutral-200); color: var(--neutral-700); margin-left: 2px; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 12px; margin: 8px 0;
  background: var(--background-fill-primary); transition: box-shadow .25s, border-color .25s;
  scroll-margin: 12px; }
.src-card.is-target { border-color: var(--color-accent); box-shadow: 0 0 0 3px var(--color-accent-soft); }
.src-head { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.src-label { font-weight: 700; font-size: 15px; font-variant-numeric: tabular-nums; }
.src-nocase { font-size: 11px; color: var(--body-text-color-subdued); border: 1px dashed var(--border-color-primary);
  border-radius: 4px; padding: 0 4px; }
.src-outcome { margin-left: auto; font-size: 11.5px; padding: 1px 8px; border-radius: 999px;
  background: var(--neutral-100); color: var(--neutral-700); border: 1px solid var(--border-color-primary); }
.src-meta { color: var(--body-text-color-subdued); font-size: 12.5px; margin: 3px 0 6px; }
.src-quote { margin: 6px 0 !important; padding: 6px 10px !important;
  border-left: 3px solid var(--color-accent) !important;
  background: var(--background-fill-secondary); border-radius: 0 6px 6px 0; font-size: 13.5px;
  color: var(--body-text-color); white-space: pre-line; }
.src-quote.is-target { background: #fff4c2; }
.dark .src-quote.is-target { background: #4d4212; }
.src-para { font-weight: 700; color: var(--color-accent); margin-right: 4px; white-space: nowrap; }
.src-link { font-size: 12.5px; }
.src-card.retrieved { background: var(--background-fill-secondary); }
.src-card.retrieved .src-quote { border-left-color: var(--neutral-300) !important; background: transparent; }
.src-also { margin-top: 10px; }
.src-also > summary { cursor: pointer; font-weight: 650; font-size: 13px; padding: 4px 0; }
.src-empty { color: var(--body-text-color-subdued); font-size: 13.5px; }
"""

JS = """
(() => {
  function show(id) {
    const el = document.getElementById(id);
    if (!el) return false;
    const turn = el.closest('.src-turn');
    if (turn && !turn.classList.contains('active')) {
      turn.parentElement.querySelectorAll('.src-turn.active').forEach((t) => t.classList.remove('active'));
      turn.classList.add('active');
    }
    const details = el.closest('details');
    if (details) details.open = true;
    document.querySelectorAll('.is-target').forEach((t) => t.classList.remove('is-target'));
    const card = el.closest('.src-card') || el;
    card.classList.add('is-target');
    el.classList.add('is-target');
    // Scroll only the sources column when it scrolls by itself, so the chat stays where it is: show the
    // card from its header (or the answer's header when the card is near it), unless that would hide the
    // cited paragraph.
    const col = el.closest('#sources-col');
    if (col && col.scrollHeight > col.clientHeight + 1) {
      const base = col.getBoundingClientRect().top;
      const rel = (node) => node.getBoundingClientRect().top - base;
      const section = el.closest('.src-turn') || card;
      let want = rel(card) - 8;
      if (rel(card) - rel(section) < col.clientHeight / 3) want = rel(section) - 4;
      if (rel(el) - want + Math.min(el.offsetHeight, 160) > col.clientHeight) want = rel(el) - 48;
      col.scrollTop += want;
    } else {
      el.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    }
    return true;
  }
  document.addEventListener('click', (ev) => {
    const a = ev.target instanceof Element ? ev.target.closest('a[href^="#src-"]') : null;
    if (!a) return;
    const id = (a.getAttribute('href') || '').replace(/^#/, '');
    ev.preventDefault();
    ev.stopPropagation();
    if (id) show(id);
  }, true);
})();
"""
