// Conditional form fields (visible_when): shown only while their condition holds. Without
// JavaScript every field shows and the engine ignores the ones whose condition does not hold.
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
})();
