package loadtest

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
)

// The HTML report is one self-contained page: inline CSS and inline SVG,
// no scripts, no external assets.

// Chart geometry, in SVG user units.
const (
	chartW      = 900
	chartH      = 280
	chartLeft   = 64
	chartRight  = 16
	chartTop    = 16
	chartBottom = 32
)

type chartLine struct {
	Name   string
	Color  string
	Dashed bool
	Points string // SVG polyline points
}

type chartTick struct {
	Pos   float64
	Label string
}

type chartView struct {
	Title                    string
	W, H                     int
	Left, Right, Top, Bottom float64
	Lines                    []chartLine
	YTicks, XTicks           []chartTick
	StopX                    float64 // where acting stopped; 0: not drawn
}

type seriesLine struct {
	name   string
	color  string
	dashed bool
	y      func(Point) float64
}

// makeChart plots lines over the series against time.
func makeChart(title string, series []Point, stopT float64, lines []seriesLine) chartView {
	v := chartView{
		Title: title, W: chartW, H: chartH,
		Left: chartLeft, Right: chartW - chartRight, Top: chartTop, Bottom: chartH - chartBottom,
	}
	xMax, yMax := 1.0, 0.0
	for _, p := range series {
		xMax = math.Max(xMax, p.T)
		for _, l := range lines {
			yMax = math.Max(yMax, l.y(p))
		}
	}
	yMax = niceCeil(yMax)
	x := func(t float64) float64 { return v.Left + (v.Right-v.Left)*t/xMax }
	y := func(val float64) float64 { return v.Bottom - (v.Bottom-v.Top)*val/yMax }
	for _, l := range lines {
		var pts strings.Builder
		for i, p := range series {
			if i > 0 {
				pts.WriteByte(' ')
			}
			fmt.Fprintf(&pts, "%.1f,%.1f", x(p.T), y(l.y(p)))
		}
		v.Lines = append(v.Lines, chartLine{Name: l.name, Color: l.color, Dashed: l.dashed, Points: pts.String()})
	}
	for i := 0; i <= 4; i++ {
		val := yMax * float64(i) / 4
		v.YTicks = append(v.YTicks, chartTick{Pos: y(val), Label: formatTick(val)})
	}
	step := math.Max(1, math.Ceil(xMax/10))
	for t := 0.0; t <= xMax; t += step {
		v.XTicks = append(v.XTicks, chartTick{Pos: x(t), Label: strconv.FormatFloat(t, 'f', -1, 64) + "s"})
	}
	if stopT > 0 && stopT < xMax {
		v.StopX = x(stopT)
	}
	return v
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func formatTick(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

type htmlView struct {
	Rep     *Report
	Summary string
	Charts  []chartView
}

// WriteHTML writes the report as a self-contained page: the summary, and
// latency percentiles and throughput over time.
func (rep *Report) WriteHTML(w io.Writer) error {
	var sum strings.Builder
	if err := rep.WriteSummary(&sum); err != nil {
		return err
	}
	stop := rep.ElapsedS
	view := htmlView{Rep: rep, Summary: sum.String()}
	view.Charts = []chartView{
		makeChart("Ack latency (ms): action sent → ack", rep.Series, stop, []seriesLine{
			{"p50", "#1b9e77", false, func(p Point) float64 { return p.AckMS.P50 }},
			{"p90", "#7570b3", false, func(p Point) float64 { return p.AckMS.P90 }},
			{"p99", "#d95f02", false, func(p Point) float64 { return p.AckMS.P99 }},
			{"p99.9", "#e7298a", false, func(p Point) float64 { return p.AckMS.P999 }},
			{"event p99", "#666666", true, func(p Point) float64 { return p.EventMS.P99 }},
		}),
		makeChart("Throughput (per second)", rep.Series, stop, []seriesLine{
			{"acked", "#1b9e77", false, func(p Point) float64 { return p.AckedPerSec }},
			{"sent", "#7570b3", true, func(p Point) float64 { return p.SentPerSec }},
			{"events delivered", "#d95f02", false, func(p Point) float64 { return p.EventsPerSec }},
		}),
		makeChart("Errors and violations", rep.Series, stop, []seriesLine{
			{"errors/s", "#e6ab02", false, func(p Point) float64 { return p.ErrorsPerSec }},
			{"violations (total)", "#d62728", false, func(p Point) float64 { return float64(p.Violations) }},
		}),
	}
	return htmlPage.Execute(w, view)
}

var htmlPage = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lasthit loadtest {{.Rep.Params.Scenario}} {{.Rep.Params.RunID}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; }
h2 { font-size: 16px; margin: 24px 0 4px; }
pre { background: #f6f6f6; padding: 12px; overflow-x: auto; font-size: 13px; }
.ok { color: #1b7e3b; } .bad { color: #c0162b; font-weight: bold; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-size: 11px; fill: #444; }
.grid { stroke: #e4e4e4; } .axis { stroke: #888; } .stop { stroke: #999; stroke-dasharray: 4 3; }
.legend span { margin-right: 16px; font-size: 13px; }
.legend i { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin-right: 4px; }
</style>
</head>
<body>
<h1>lasthit loadtest: {{.Rep.Params.Scenario}}, {{.Rep.Params.Bots}} bots in {{.Rep.Params.Rooms}} rooms</h1>
{{if eq .Rep.Violations 0}}<p class="ok">Every invariant held.</p>{{else}}<p class="bad">{{.Rep.Violations}} invariant violations.</p>{{end}}
<pre>{{.Summary}}</pre>
{{range .Charts}}
<h2>{{.Title}}</h2>
<div class="legend">{{range .Lines}}<span><i style="background: {{.Color}}"></i>{{.Name}}</span>{{end}}</div>
<svg viewBox="0 0 {{.W}} {{.H}}" width="{{.W}}" height="{{.H}}" role="img" aria-label="{{.Title}}">
{{- $c := .}}
{{- range .YTicks}}
<line class="grid" x1="{{$c.Left}}" x2="{{$c.Right}}" y1="{{.Pos}}" y2="{{.Pos}}"/>
<text x="{{$c.Left}}" y="{{.Pos}}" dx="-6" dy="4" text-anchor="end">{{.Label}}</text>
{{- end}}
{{- range .XTicks}}
<text x="{{.Pos}}" y="{{$c.Bottom}}" dy="16" text-anchor="middle">{{.Label}}</text>
{{- end}}
<line class="axis" x1="{{.Left}}" x2="{{.Right}}" y1="{{.Bottom}}" y2="{{.Bottom}}"/>
<line class="axis" x1="{{.Left}}" x2="{{.Left}}" y1="{{.Top}}" y2="{{.Bottom}}"/>
{{- if .StopX}}
<line class="stop" x1="{{.StopX}}" x2="{{.StopX}}" y1="{{.Top}}" y2="{{.Bottom}}"/>
<text x="{{.StopX}}" y="{{.Top}}" dx="4" dy="10">stop</text>
{{- end}}
{{- range .Lines}}
<polyline fill="none" stroke="{{.Color}}" stroke-width="1.6"{{if .Dashed}} stroke-dasharray="5 3"{{end}} points="{{.Points}}"/>
{{- end}}
</svg>
{{end}}
</body>
</html>
`))
