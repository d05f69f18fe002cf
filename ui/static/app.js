// The UI's script, put in the page's <head> by ui/assets.py.
//
// It handles clicks on citation markers (links to "#src-..."): it shows and highlights the card they point to and
// opens the decision in the viewer; and clicks on links that open a decision (data-open-ref: source cards, the
// browser's table, similar decisions), which it opens in place instead of reloading the page (the link's address
// still works when copied or opened in a new tab). It sends the request through a hidden button (the "bridge" in
// ui/layout.py) and, once the viewer has the decision, scrolls the cited paragraph into view and moves the keyboard
// focus to it. Everything it touches was built from ui/templates/; it never inserts text into the page.
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
