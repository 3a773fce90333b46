"""Charts as inline SVG, drawn on the server: no script, no external library.

A chart object is {"object_type": "chart", "kind": "bar" | "line", "title",
"labels": [x labels], "series": [{"label", "values": [numbers]}]}.
"""

import html

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 560, 220, 44, 34, 26
COLOURS = ("#1f6feb", "#1a7f37", "#cf222e", "#9a6700", "#8250df", "#0a7ea4")


def _scale(values):
    top = max([v for v in values if v is not None] + [1])
    magnitude = 10 ** (len(str(int(top))) - 1)
    return ((int(top) // magnitude) + 1) * magnitude


def svg(chart):
    esc = html.escape
    labels = chart.get("labels", [])
    series = chart.get("series", [])
    all_values = [v for s in series for v in s["values"]]
    top = _scale(all_values)
    plot_w, plot_h = WIDTH - PAD_LEFT - 10, HEIGHT - PAD_BOTTOM - PAD_TOP
    parts = ['<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" '
             'height="%d" xmlns="http://www.w3.org/2000/svg">' % (
                 esc(chart.get("title", "")), WIDTH, HEIGHT, WIDTH, HEIGHT),
             '<text x="%d" y="16" font-size="13" font-weight="600">%s</text>' % (
                 PAD_LEFT, esc(chart.get("title", "")))]
    for i in range(5):  # grid lines with their values
        y = PAD_TOP + plot_h - plot_h * i / 4
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#dde3ea"/>' % (
            PAD_LEFT, WIDTH - 10, y, y))
        parts.append('<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#5b6b7c">'
                     '%s</text>' % (PAD_LEFT - 4, y + 3, esc("%g" % (top * i / 4))))
    count = max(len(labels), 1)
    step = plot_w / count
    every = max(1, count // 12)
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle" '
                         'fill="#5b6b7c">%s</text>' % (PAD_LEFT + step * (i + 0.5),
                                                       HEIGHT - PAD_BOTTOM + 14, esc(str(label))))
    if chart.get("kind") == "bar":
        width = step * 0.7 / max(len(series), 1)
        for n, serie in enumerate(series):
            colour = COLOURS[n % len(COLOURS)]
            for i, value in enumerate(serie["values"]):
                h = plot_h * (value or 0) / top
                x = PAD_LEFT + step * i + step * 0.15 + width * n
                parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                             '<title>%s: %s</title></rect>' % (
                                 x, PAD_TOP + plot_h - h, width, h, colour,
                                 esc(str(labels[i]) if i < len(labels) else ""), value))
    else:
        for n, serie in enumerate(series):
            colour = COLOURS[n % len(COLOURS)]
            points = " ".join("%.1f,%.1f" % (PAD_LEFT + step * (i + 0.5),
                                             PAD_TOP + plot_h - plot_h * (v or 0) / top)
                              for i, v in enumerate(serie["values"]))
            parts.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                         % (colour, points))
    for n, serie in enumerate(series):  # legend
        x = WIDTH - 10 - 100 * (len(series) - n)  # legend on the right, clear of the title
        parts.append('<rect x="%d" y="7" width="10" height="10" fill="%s"/><text x="%d" y="16" '
                     'font-size="11">%s</text>' % (x, COLOURS[n % len(COLOURS)], x + 14,
                                                   esc(serie["label"])))
    parts.append("</svg>")
    return "".join(parts)
