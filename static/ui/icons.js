// The call's icons as inline SVG built with DOM calls (no markup strings, nothing for the CSP to
// refuse). Paths on a 24×24 grid, drawn with the current text colour.
const PATHS = {
  mic: ["M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3z", "M19 11a7 7 0 0 1-14 0", "M12 18v3"],
  micOff: [
    "M9 9v2a3 3 0 0 0 5.1 2.1",
    "M15 9.3V5a3 3 0 0 0-5.9-.8",
    "M19 11a7 7 0 0 1-1.2 3.9",
    "M5 11a7 7 0 0 0 10.5 6",
    "M12 18v3",
    "M3 3l18 18",
  ],
  camera: ["M3 7h12v10H3z", "M15 10l6-3v10l-6-3"],
  cameraOff: ["M3 7h4m4 0h4v4", "M15 10l6-3v10l-6-3", "M3 7v10h12", "M3 3l18 18"],
  audioOnly: ["M4 14v-2a8 8 0 0 1 16 0v2", "M4 14h3v6H4z", "M17 14h3v6h-3z"],
  switchCamera: ["M4 8h3l2-3h6l2 3h3v11H4z", "M9 13a3 3 0 0 1 5-2l1 1", "M15 14a3 3 0 0 1-5 2l-1-1"],
  screen: ["M3 4h18v12H3z", "M8 20h8", "M12 16v4", "M12 13V7", "M9 10l3-3 3 3"],
  leave: ["M3 15c5-5 13-5 18 0l-2.5 2.5-3-2v-2.5a10 10 0 0 0-5 0V15l-3 2z"],
  end: ["M5 12l5 5 9-10"],
};

export function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "icon");
  for (const d of PATHS[name] || []) {
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}
