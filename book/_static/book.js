/* Course website (make book): a figure wider than the text column is shown at the column's width;
   a click opens it at full size (the image file itself, served from the site). */
(function () {
  function enlargeable(img) {
    if (img.closest('a') || !img.naturalWidth) return;
    if (img.naturalWidth <= img.clientWidth + 1) return;  // shown at its own size already
    var a = document.createElement('a');
    a.href = img.currentSrc || img.src;
    a.className = 'figure-enlarge';
    a.title = 'Click to enlarge (' + img.naturalWidth + ' × ' + img.naturalHeight + ' px)';
    a.target = '_blank';
    img.parentNode.insertBefore(a, img);
    a.appendChild(img);
    var note = document.createElement('div');
    note.className = 'figure-enlarge-note';
    note.textContent = 'Click the figure to enlarge it.';
    a.parentNode.insertBefore(note, a.nextSibling);
  }
  function all() {
    document.querySelectorAll('div.cell_output img').forEach(function (img) {
      if (img.complete) enlargeable(img); else img.addEventListener('load', function () { enlargeable(img); });
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', all); else all();
})();
