// Task forms: conditional fields (visible_when), table rows added and removed within the
// definition's min/max rows, and the focus moved to the first wrong field after a refused submit.
// Without JavaScript every field shows (the engine ignores the ones whose condition does not
// hold) and a table shows its rows as saved.
(function () {
  const form = document.querySelector("form[enctype]");
  if (!form) return;
  const valueOf = (name) => {
    const inputs = form.querySelectorAll(`[name="${name}"]`);
    if (!inputs.length) return undefined;
    const first = inputs[0];
    if (first.type === "checkbox" && inputs.length === 1) return first.checked;
    if (first.type === "checkbox") return [...inputs].filter((i) => i.checked).map((i) => i.value);
    return first.value;
  };
  const update = () => {
    for (const field of form.querySelectorAll("[data-when-field]")) {
      const allowed = JSON.parse(field.dataset.whenValues);
      const current = valueOf(field.dataset.whenField);
      field.hidden = !allowed.some((v) => v === current || String(v) === String(current));
    }
  };
  form.addEventListener("change", update);
  update();

  // Table rows: cells are named <table>-<row>-<column>; after a change the rows are numbered
  // again from 0 so the names stay consecutive, and each cell's aria-label names its row.
  const renumber = (table) => {
    const name = table.dataset.table;
    const rows = table.querySelectorAll("tbody tr[data-row]");
    rows.forEach((row, index) => {
      for (const input of row.querySelectorAll("[name]")) {
        input.name = input.name.replace(new RegExp(`^${name}-[^-]+-`), `${name}-${index}-`);
        if (input.id) input.id = input.id.replace(new RegExp(`^${name}-[^-]+-`), `${name}-${index}-`);
        const label = input.getAttribute("aria-label");
        if (label) input.setAttribute("aria-label", label.replace(/\d+|__number__/, String(index + 1)));
      }
    });
    const max = Number(table.dataset.maxRows || Infinity);
    const min = Number(table.dataset.minRows || 0);
    const add = form.querySelector(`[data-add-row="${name}"]`);
    if (add) add.disabled = rows.length >= max;
    for (const remove of table.querySelectorAll("[data-remove-row]")) remove.disabled = rows.length <= Math.max(min, 1);
  };
  for (const table of form.querySelectorAll("table[data-table]")) renumber(table);
  form.addEventListener("click", (event) => {
    const add = event.target.closest("[data-add-row]");
    const remove = event.target.closest("[data-remove-row]");
    if (add) {
      const name = add.dataset.addRow;
      const table = form.querySelector(`table[data-table="${name}"]`);
      const template = form.querySelector(`template[data-row-template="${name}"]`);
      const row = template.content.firstElementChild.cloneNode(true);
      table.tBodies[0].appendChild(row);
      renumber(table);
      update();
      const first = row.querySelector("input, select, textarea");
      if (first) first.focus();
    } else if (remove) {
      const table = remove.closest("table[data-table]");
      const row = remove.closest("tr");
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber(table);
      const focus = next && next.querySelector("input, select, textarea");
      if (focus) focus.focus();
    }
  });

  // A refused submit comes back with the wrong fields marked: start there.
  const wrong = form.querySelector('[aria-invalid="true"]');
  if (wrong) wrong.focus();
})();
