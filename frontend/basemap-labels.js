// Label symbolizers of the built-in basemap (protomaps-leaflet's LabelSymbolizer interface:
// place(layout, geometry, feature) -> labels with an anchor, collision boxes and a draw).

/** Wraps a label symbolizer and records the names it draws — labels that lost to another
 * in the layout are not drawn and not recorded (read by tests and the page). */
export class Recorded {
  constructor(inner, names) {
    this.inner = inner;
    this.names = names;
  }

  place(layout, geom, feature) {
    const labels = this.inner.place(layout, geom, feature);
    const name = feature.props.name;
    if (!labels || !name) return labels;
    return labels.map((label) => ({ ...label, draw: (ctx) => {
      this.names.add(String(name));
      label.draw(ctx);
    } }));
  }
}

/** Distance from p to the segment a-b (points of @mapbox/point-geometry). */
function toSegment(p, a, b) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const t = Math.max(0, Math.min(1, ((p.x - a.x) * dx + (p.y - a.y) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(p.x - a.x - t * dx, p.y - a.y - t * dy);
}

/** A name written along a wiggly line (a river at small scale), on stretches whose chord is as
 * long as the text and from which the line strays by at most `straightness` pixels, one
 * label per `repeat` pixels of line. protomaps-leaflet's LineLabelSymbolizer needs runs with
 * no bend over 4 degrees, which Natural Earth rivers hardly have below zoom 9. */
export class AlongLineText {
  constructor({ font, fill, stroke, width = 2, straightness = 3, repeat = 320 }) {
    Object.assign(this, { font, fill, stroke, width, straightness, repeat });
  }

  place(layout, geom, feature) {
    const text = feature.props.name;
    if (!text) return undefined;
    layout.scratch.font = this.font;
    const metrics = layout.scratch.measureText(text);
    const height = metrics.actualBoundingBoxAscent + metrics.actualBoundingBoxDescent;
    const length = metrics.width + 2 * height;
    const labels = [];
    for (const line of geom) {
      let from = 0;
      while (from < line.length - 1) {
        let to = from + 1;
        while (to < line.length && line[from].dist(line[to]) < length) to++;
        if (to >= line.length) break;
        if (this.straight(line, from, to)) {
          labels.push(this.label(text, metrics.width, height, line[from], line[to]));
          let along = 0;
          while (from < line.length - 1 && along < this.repeat) along += line[from].dist(line[++from]);
        } else from++;
      }
    }
    return labels.length ? labels : undefined;
  }

  straight(line, from, to) {
    for (let k = from + 1; k < to; k++) if (toSegment(line[k], line[from], line[to]) > this.straightness) return false;
    return true;
  }

  label(text, textWidth, height, a, b) {
    const [start, end] = a.x <= b.x ? [a, b] : [b, a]; // left to right, never upside down
    const angle = Math.atan2(end.y - start.y, end.x - start.x);
    const anchor = start.add(end).div(2);
    const unit = end.sub(start).unit();
    const offset = height / 2 + 2; // above the line, not on it
    const centre = anchor.add(unit.perp().mult(-offset));
    const bboxes = [];
    for (let d = -textWidth / 2; d <= textWidth / 2; d += height) {
      const c = centre.add(unit.mult(d));
      bboxes.push({ minX: c.x - height / 2, minY: c.y - height / 2, maxX: c.x + height / 2, maxY: c.y + height / 2 });
    }
    const draw = (ctx) => {
      ctx.globalAlpha = 1;
      ctx.rotate(angle);
      ctx.translate(0, -offset);
      ctx.font = this.font;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.lineWidth = this.width;
      ctx.strokeStyle = this.stroke;
      ctx.strokeText(text, 0, 0);
      ctx.fillStyle = this.fill;
      ctx.fillText(text, 0, 0);
    };
    return { anchor, bboxes, draw, deduplicationKey: text, deduplicationDistance: this.repeat };
  }
}
