// Before/after comparison. A result item carries one quicklook PNG (eowatch.io.quicklook):
// before | after | change panels side by side with 8 px margins, labels above and a legend
// below. The panels are cut out of it and shown stacked with a swipe slider.

const MARGIN = 8;
const PANELS = 3;

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("the quicklook is not a readable image"));
    image.src = url;
  });
}

/** Rows of the panels: the first row mostly not white is the top; the height follows from
 * the raster shape (rows, cols) and the decimation the quicklook used, else from a scan. */
function panelBox(pixels, width, height, panelWidth, shape) {
  const nonWhite = (y) => {
    let count = 0;
    for (let x = MARGIN; x < MARGIN + panelWidth; x++) {
      const i = (y * width + x) * 4;
      if (pixels[i] < 250 || pixels[i + 1] < 250 || pixels[i + 2] < 250) count++;
    }
    return count / panelWidth;
  };
  let top = 0;
  while (top < height && nonWhite(top) < 0.5) top++;
  let rows = 0;
  if (Array.isArray(shape) && shape.length === 2) {
    for (let step = 1; step <= 64; step++) {
      if (Math.ceil(shape[1] / step) === panelWidth) {
        rows = Math.ceil(shape[0] / step);
        break;
      }
    }
  }
  if (!rows) {
    rows = 1;
    while (top + rows < height && nonWhite(top + rows) >= 0.5) rows++;
  }
  return { top, rows: Math.min(rows, height - top) };
}

function cut(image, x, top, width, rows) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = rows;
  canvas.getContext("2d").drawImage(image, x, top, width, rows, 0, 0, width, rows);
  return canvas;
}

/** Fill `container` (with .compare-view, #compare-swipe and #compare-mode inside) from the
 * quicklook at `url`; false when the image does not have the three-panel layout. */
export async function comparePanels(container, url, shape) {
  const image = await loadImage(url);
  const width = image.naturalWidth;
  const height = image.naturalHeight;
  const panelWidth = Math.round((width - MARGIN * (PANELS + 1)) / PANELS);
  if (panelWidth < 8) return false;
  const scratch = document.createElement("canvas");
  scratch.width = width;
  scratch.height = height;
  const context = scratch.getContext("2d", { willReadFrequently: true });
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, width, height).data;
  const { top, rows } = panelBox(pixels, width, height, panelWidth, shape);
  if (rows < 8) return false;
  const panels = [0, 1, 2].map((i) => cut(image, MARGIN + i * (panelWidth + MARGIN), top, panelWidth, rows));
  for (const [canvas, name] of panels.map((c, i) => [c, ["before", "after", "change"][i]])) {
    canvas.dataset.panel = name;
  }
  const view = container.querySelector(".compare-view");
  const swipe = container.querySelector("#compare-swipe");
  const mode = container.querySelector("#compare-mode");
  const labels = container.querySelectorAll(".compare-labels span");
  const show = () => {
    const [left, right] = mode.value === "after-change" ? [panels[1], panels[2]] : [panels[0], panels[1]];
    const names = mode.value === "after-change" ? ["After", "Change"] : ["Before", "After"];
    right.className = "under";
    left.className = "over";
    view.replaceChildren(right, left);
    labels[0].textContent = names[0];
    labels[1].textContent = names[1];
    clip();
  };
  const clip = () => {
    const over = view.querySelector(".over");
    if (over) over.style.clipPath = `inset(0 ${100 - Number(swipe.value)}% 0 0)`;
  };
  swipe.oninput = clip;
  mode.onchange = show;
  show();
  return true;
}
