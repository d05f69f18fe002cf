"""Stylesheet and script of the UI (passed to Gradio's launch(css=..., head=...)).

Kept in a module rather than loose files so that they travel with the package. The script handles clicks on
citation markers (links to "#src-..."): it shows and highlights the card they point to and opens the decision in
the viewer; and clicks on links that open a decision (data-open-ref: source cards, the browser's table, similar
decisions), which it opens in place instead of reloading the page (the link's address still works when copied or
opened in a new tab). It sends the request through a hidden button (app.py's "bridge") and, once the viewer has
the decision, scrolls the cited paragraph into view and moves the keyboard focus to it. Everything it touches was
built by rag/ui_render.py or rag/ui_viewer.py; it never inserts text into the page.
"""

CSS = """
.gradio-container { max-width: 1560px !important; margin: 0 auto !important; }
footer { display: none !important; }

/* header */
#app-header-block { padding: 0 !important; }
.app-header { display: flex; gap: 14px; align-items: center; padding: 0 4px 2px; }
.app-mark { width: 40px; height: 40px; border-radius: 10px; display: grid; place-items: center; font-size: 22px;
  background: #1d4ed8; color: white; flex: none; }
.app-header h1 { font-size: 20px; margin: 0; font-weight: 650; letter-spacing: -0.01em; }
.app-header p { margin: 2px 0 0; font-size: 13.5px; color: var(--body-text-color-subdued); max-width: 900px; }

/* sidebar */
.side-h h2, .side-h h3 { font-size: 13px !important; text-transform: uppercase; letter-spacing: .06em;
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
  color: #1e3a8a !important; background: #e8f0fe; border-radius: 5px;
  padding: 0 5px; margin: 0 2px 0 0; white-space: nowrap; cursor: pointer; }
/* dark enough for 4.5:1 although Gradio draws chat text at opacity 0.8 */
#chat a[href^="#src-"]:hover, #chat a[href^="#src-"]:focus { background: #1e3a8a;
  color: white !important; }

/* sources panel */
#sources-col { position: sticky; top: 8px; align-self: flex-start; max-height: max(420px, calc(100vh - 130px));
  overflow-y: auto; padding-right: 4px; }
#side-col { align-self: flex-start; }
.sources-panel { font-size: 14px; line-height: 1.5; }
.sources-title { font-size: 13px !important; margin-top: 0; text-transform: uppercase; letter-spacing: .06em; font-weight: 650;
  color: var(--body-text-color-subdued); margin: 2px 0 8px; }
.src-turn { display: none; }
.src-turn.active { display: block; }
.src-turn-head { display: flex; gap: 8px; align-items: baseline; font-weight: 600; margin-bottom: 6px; }
.src-q { flex: none; font-size: 11px; font-weight: 700; color: white; background: var(--neutral-500);
  border-radius: 4px; padding: 1px 6px; }
.src-filters, .src-note { font-size: 12.5px; color: var(--body-text-color-subdued); margin: 2px 0; }
.src-k { font-weight: 650; text-transform: uppercase; font-size: 11px; letter-spacing: .05em; margin-right: 4px; }
.src-h { font-size: 13px !important; margin: 12px 0 4px !important; font-weight: 650; }
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
.src-para { font-weight: 700; color: #1d4ed8; margin-right: 4px; white-space: nowrap; }
.src-link { font-size: 12.5px; }
.src-card.retrieved { background: var(--background-fill-secondary); }
.src-card.retrieved .src-quote { border-left-color: var(--neutral-300) !important; background: transparent; }
.src-also { margin-top: 10px; }
.src-also > summary { cursor: pointer; font-weight: 650; font-size: 13px; padding: 4px 0; }
.src-empty { color: var(--body-text-color-subdued); font-size: 13.5px; }

/* shared */
.visually-hidden { position: absolute !important; width: 1px !important; height: 1px !important; padding: 0 !important;
  margin: -1px !important; overflow: hidden !important; clip: rect(0, 0, 0, 0) !important; white-space: nowrap !important;
  border: 0 !important; }
a:focus-visible, button:focus-visible, [tabindex]:focus-visible, summary:focus-visible, textarea:focus-visible,
input:focus-visible { outline: 3px solid #1d4ed8 !important; outline-offset: 2px !important; }
.src-open { color: inherit; text-decoration: underline; text-underline-offset: 3px; }
.src-label .src-open { color: var(--body-text-color); }
.src-actions { display: flex; flex-wrap: wrap; gap: 4px 14px; margin-top: 4px; font-size: 12.5px; }
.src-actions a { color: #1d4ed8; }

/* the decision viewer */
#viewer-tools { gap: 8px; justify-content: flex-start; }
#viewer-tools > * { flex: 0 0 auto !important; min-width: 0 !important; }
.viewer { max-width: 880px; margin: 0 auto; font-size: 15.5px; line-height: 1.6; color: var(--body-text-color); }
.viewer-kicker { margin: 0; font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: #475569; }
.viewer-title { font-size: 24px !important; margin: 0 0 8px !important; font-variant-numeric: tabular-nums; }
.viewer-facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 6px 18px;
  margin: 0 0 10px; }
.viewer-facts dt { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: #475569; }
.viewer-facts dd { margin: 0; font-weight: 600; }
.viewer-links { font-size: 14px; margin: 6px 0; }
.viewer-links a, .viewer-cited-note a, .similar-link { color: #1d4ed8; }
.viewer-hint { color: #475569; }
.viewer-cited-note { background: #fff8d6; border: 1px solid #e0c860; border-radius: 8px; padding: 8px 12px;
  font-size: 14px; }
.viewer-section h3 { font-size: 17px !important; margin: 22px 0 8px !important; border-bottom: 1px solid #cbd5e1;
  padding-bottom: 4px; }
.viewer-subheading { font-size: 15px !important; margin: 14px 0 4px !important; }
.vpara { margin: 8px 0 !important; padding: 4px 10px 4px 44px; position: relative; border-radius: 6px;
  scroll-margin: 80px; }
.vnum { position: absolute; left: 8px; top: 5px; font-size: 12.5px; font-weight: 700; color: #475569;
  font-variant-numeric: tabular-nums; }
.vpara.cited { background: #fff4c2; box-shadow: inset 4px 0 0 #b45309; }
.vpara.cited .vnum { color: #7c2d12; }
.vpara.is-focus { outline: 3px solid #1d4ed8; outline-offset: 2px; }
.cited-badge { display: inline-block; font-size: 11px; font-weight: 700; text-transform: uppercase;
  letter-spacing: .05em; color: #7c2d12; background: #fde68a; border: 1px solid #b45309; border-radius: 4px;
  padding: 0 5px; margin-right: 4px; vertical-align: 1px; }
.viewer-summary { font-style: italic; }
.similar-list { list-style: none; padding: 0; margin: 0; }
.similar-list li { padding: 8px 0; border-bottom: 1px solid #e2e8f0; }
.similar-link { font-weight: 700; margin-right: 8px; }
.similar-meta { color: #475569; font-size: 13.5px; }
.similar-summary { display: block; font-size: 14px; }
.viewer-empty { color: #475569; }
.viewer-placeholder { padding: 24px 0; }

/* the decisions browser */
.browse-results { font-size: 14px; }
.browse-count { margin: 0 0 8px; }
.browse-count a, .browse-open { color: #1d4ed8; }
.browse-error { color: #9f1239; font-weight: 600; }
.browse-table { width: 100%; border-collapse: collapse; font-size: 13.5px; background: var(--background-fill-primary); }
.browse-table th, .browse-table td { text-align: left; vertical-align: top; padding: 6px 8px;
  border-bottom: 1px solid #e2e8f0; }
.browse-table thead th { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #334155;
  background: #eef2f7; position: sticky; top: 0; }
.browse-table tbody tr { cursor: pointer; }
.browse-table tbody tr:hover { background: #f1f5f9; }
.browse-table th[scope=row] { white-space: nowrap; font-variant-numeric: tabular-nums; }
.browse-date { white-space: nowrap; }
#b-pager { gap: 8px; justify-content: flex-start; }
#b-pager > * { flex: 0 0 auto !important; min-width: 0 !important; }

"""

# Dark mode (the system's preference, or ?__theme=dark): the same contrast on a dark page. One selector per rule:
# Gradio scopes custom CSS under its container and, in a comma-separated list, handles ".dark" only in the first
# selector (the others become ".dark .gradio-container ... .dark X", which never matches).
_DARK = {
    "color: #93c5fd": [".src-para", ".src-actions a", ".viewer-links a", ".viewer-cited-note a", ".similar-link",
                       ".browse-count a", ".browse-open"],
    "color: var(--body-text-color)": [".src-label .src-open"],
    "color: #cbd5e1": [".viewer-kicker", ".viewer-facts dt", ".viewer-hint", ".similar-meta", ".viewer-empty",
                       ".vnum"],
    "background: #3a3210; border-color: #a16207; color: #f8fafc": [".viewer-cited-note"],
    "background: #3f3410; box-shadow: inset 4px 0 0 #f59e0b": [".vpara.cited"],
    "color: #fde68a": [".vpara.cited .vnum"],
    "color: #fde68a; background: #713f12; border-color: #f59e0b": [".cited-badge"],
    "border-color: #334155": [".viewer-section h3", ".similar-list li", ".browse-table th", ".browse-table td"],
    "background: #1e293b; color: #e2e8f0": [".browse-table thead th"],
    "background: #1e293b": [".browse-table tbody tr:hover"],
    "color: #fda4af": [".browse-error"],
    "background: #4d4212": [".src-quote.is-target"],
    "outline-color: #93c5fd !important": ["a:focus-visible", "button:focus-visible", "[tabindex]:focus-visible",
                                          ".vpara.is-focus"],
}
CSS += "\n/* dark mode */\n" + "".join(f".dark {selector} {{ {rules}; }}\n"
                                     for rules, selectors in _DARK.items() for selector in selectors)

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
  // Gradio's date fields show their label as a plain span: the text box is named only by its placeholder and
  // the calendar button not at all (axe: button-name, critical). Name both after the field's label.
  function nameDateFields() {
    document.querySelectorAll('.timebox button.calendar:not([aria-label])').forEach((button) => {
      const block = button.closest('.block');
      const info = block && block.querySelector('[data-testid="block-info"]');
      const name = info ? info.textContent.trim() : 'date';
      button.setAttribute('aria-label', 'Choose a date: ' + name);
      const input = block && block.querySelector('.timebox input');
      if (input && !input.hasAttribute('aria-label')) input.setAttribute('aria-label', name + ' (YYYY-MM-DD)');
    });
  }
  new MutationObserver(nameDateFields).observe(document.documentElement, { childList: true, subtree: true });
  const paras = (text) => (text || '').split(',').map((x) => parseInt(x, 10)).filter((n) => n > 0);
  let pending = null;
  function openDecision(ref, cited, focus) {
    if (!ref) return;
    const button = document.getElementById('open-btn');
    if (!button) return;
    pending = { ref, paras: cited, focus: focus || cited[0] || null, t: Date.now() };
    window.__ombudsOpen = JSON.stringify(pending);
    button.click();
  }
  window.ombudsOpenDecision = openDecision;
  function focusPara(el) {
    document.querySelectorAll('.vpara.is-focus').forEach((p) => p.classList.remove('is-focus'));
    el.classList.add('is-focus');
    el.scrollIntoView({ block: 'center', inline: 'nearest' });
    el.focus({ preventScroll: true });
  }
  // After the viewer has the decision: show the paragraph asked for (or the first cited one) and put the
  // keyboard focus there, else on the decision's title.
  window.ombudsShowCited = () => {
    let tries = 0;
    const step = () => {
      const viewer = document.querySelector('#viewer .viewer[data-ref]');
      const wanted = pending ? pending.ref : null;
      const ready = viewer && viewer.offsetParent !== null &&
        (!wanted || viewer.dataset.ref === wanted || viewer.dataset.ref.replace(/-/g, ' ') === wanted);
      if (!ready) {
        if (tries++ < 60) setTimeout(step, 50);
        return;
      }
      pending = null;
      const focus = viewer.dataset.focus;
      const para = focus ? document.getElementById('vp-' + focus) : null;
      if (para) {
        focusPara(para);
      } else {
        const title = document.getElementById('viewer-title');
        if (title) { title.setAttribute('tabindex', '-1'); title.focus(); title.scrollIntoView({ block: 'start' }); }
      }
    };
    setTimeout(step, 30);
  };
  window.ombudsShowSimilar = () => {
    const el = document.getElementById('vs-similar');
    if (!el) return;
    el.setAttribute('tabindex', '-1');
    el.scrollIntoView({ block: 'start' });
    el.focus({ preventScroll: true });
  };
  window.ombudsFocusQuestion = () => {
    setTimeout(() => {
      const box = document.querySelector('#question textarea');
      if (!box) return;
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }, 60);
  };
  window.ombudsFocusResults = () => {
    const table = document.querySelector('#b-results .browse-results');
    if (table && table.getBoundingClientRect().top < 0) table.scrollIntoView({ block: 'start' });
  };
  document.addEventListener('click', (ev) => {
    const target = ev.target instanceof Element ? ev.target : null;
    if (!target) return;
    const marker = target.closest('a[href^="#src-"]');
    if (marker) {
      const id = (marker.getAttribute('href') || '').replace(/^#/, '');
      ev.preventDefault();
      ev.stopPropagation();
      if (id && show(id)) {
        // The citation also opens its decision, the cited paragraph in context.
        const el = document.getElementById(id);
        const card = el.closest('.src-card');
        if (card) openDecision(card.dataset.ref, paras(card.dataset.paras), parseInt(el.dataset.para || '', 10));
      }
      return;
    }
    if (ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) return;  // new tab: the address
    const jump = target.closest('a.viewer-jump');
    if (jump) {
      const para = document.getElementById('vp-' + jump.dataset.para);
      if (para) { ev.preventDefault(); focusPara(para); }
      return;
    }
    // A case number in an answer's text is a Markdown link to its address, ?case=...: open it in place.
    const caseLink = target.closest('#chat a[href^="?case="]');
    if (caseLink) {
      const params = new URLSearchParams(caseLink.getAttribute('href').slice(1));
      ev.preventDefault();
      ev.stopPropagation();
      openDecision(params.get('case'), paras(params.get('para')));
      return;
    }
    const opener = target.closest('[data-open-ref]');
    if (opener && (opener.tagName === 'A' || !target.closest('a, button'))) {
      ev.preventDefault();
      ev.stopPropagation();
      openDecision(opener.dataset.openRef, paras(opener.dataset.paras));
    }
  }, true);
})();
"""
