// The case's BPMN diagram in the bpmn-js viewer: completed steps and the current task highlighted.
(function () {
  const box = document.getElementById("diagram");
  if (!box || !window.BpmnJS) return;
  const viewer = new window.BpmnJS({ container: box });
  fetch(box.dataset.src, { credentials: "same-origin" })
    .then((response) => response.json())
    .then(async (diagram) => {
      await viewer.importXML(diagram.bpmn_xml);
      const canvas = viewer.get("canvas");
      const registry = viewer.get("elementRegistry");
      canvas.zoom("fit-viewport");
      for (const id of diagram.completed) if (registry.get(id)) canvas.addMarker(id, "done");
      for (const id of diagram.current) if (registry.get(id)) canvas.addMarker(id, "current");
      box.dataset.ready = "true";
    })
    .catch((error) => { box.textContent = String(error); });
})();
