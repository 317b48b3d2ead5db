package main

// chart.svg: horizontal grouped bars, one panel per metric, one group per
// workload, one bar per client (median, with a min-max whisker).

import (
	"fmt"
	"html"
	"math"
	"strings"
)

var clientColors = map[string]string{
	"kpax":     "#1b7837",
	"franz-go": "#2166ac",
	"sarama":   "#b2182b",
	"kafka-go": "#8c6d31",
}

type panel struct {
	title  string
	broker string
	kinds  []string
	metric func(*row) stat
	unit   string
}

func chartSVG(rows []row) string {
	panels := []panel{
		{"Produce throughput, sink broker (records/s, higher is better)", "sink", []string{"produce"},
			func(r *row) stat { return r.RecPerSec }, "rec/s"},
		{"Produce client CPU, sink broker (ns per record, lower is better)", "sink", []string{"produce"},
			func(r *row) stat { return r.CPUPerRec }, "ns"},
		{"Consume, sink broker (records/s, higher is better; group: fresh group, join included)", "sink", []string{"consume", "group"},
			func(r *row) stat { return r.RecPerSec }, "rec/s"},
		{"Consume client CPU, sink broker (ns per record, lower is better)", "sink", []string{"consume", "group"},
			func(r *row) stat { return r.CPUPerRec }, "ns"},
		{"Produce throughput, real Kafka broker (records/s, higher is better)", "kafka", []string{"produce"},
			func(r *row) stat { return r.RecPerSec }, "rec/s"},
		{"Consume, real Kafka broker (records/s; group: fresh group, join included)", "kafka", []string{"consume", "group"},
			func(r *row) stat { return r.RecPerSec }, "rec/s"},
		{"Scaling: produce client CPU, sink broker (ns per record as partitions, goroutines, value size grow)", "sink", []string{"scale"},
			func(r *row) stat { return r.CPUPerRec }, "ns"},
		{"Scaling: peak RSS, sink broker (MiB as partitions, goroutines, value size grow)", "sink", []string{"scale"},
			func(r *row) stat { return r.RSSMiB }, "MiB"},
		{"Ack latency p99, real Kafka broker, open loop (ms, lower is better)", "kafka", []string{"latency"},
			func(r *row) stat { return ms(r.P99) }, "ms"},
		{"Ack latency p99, sink broker, open loop (ms, lower is better)", "sink", []string{"latency"},
			func(r *row) stat { return ms(r.P99) }, "ms"},
	}
	const (
		width  = 960
		labelW = 230
		barH   = 9
		gap    = 6
		legend = 30
	)
	var clients []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.Client] {
			seen[r.Client] = true
			clients = append(clients, r.Client)
		}
	}
	var body strings.Builder
	y := legend + 10
	for _, p := range panels {
		var workloads []string
		byKey := map[string]*row{}
		wseen := map[string]bool{}
		for i := range rows {
			r := &rows[i]
			if r.Broker != p.broker || !contains(p.kinds, r.Kind) || r.Failed == r.Runs {
				continue
			}
			if !wseen[r.Workload] {
				wseen[r.Workload] = true
				workloads = append(workloads, r.Workload)
			}
			byKey[r.Workload+"|"+r.Client] = r
		}
		if len(workloads) == 0 {
			continue
		}
		maxV := 0.0
		for _, r := range byKey {
			maxV = math.Max(maxV, p.metric(r).Max)
		}
		if maxV <= 0 {
			continue
		}
		y += 14
		fmt.Fprintf(&body, `<text x="8" y="%d" font-weight="bold">%s</text>`+"\n", y, html.EscapeString(p.title))
		y += 8
		scale := float64(width-labelW-90) / maxV
		for _, w := range workloads {
			groupH := len(clients)*barH + gap
			fmt.Fprintf(&body, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+groupH/2+3, html.EscapeString(w))
			for _, c := range clients {
				r := byKey[w+"|"+c]
				if r != nil {
					s := p.metric(r)
					bw := s.Med * scale
					fmt.Fprintf(&body, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n",
						labelW, y, bw, barH-1, clientColors[c])
					if s.Max > s.Min {
						mid := float64(y) + float64(barH-1)/2
						fmt.Fprintf(&body, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333" stroke-width="1"/>`+"\n",
							float64(labelW)+s.Min*scale, float64(labelW)+s.Max*scale, mid, mid)
					}
					fmt.Fprintf(&body, `<text x="%.1f" y="%d" font-size="9">%s</text>`+"\n",
						float64(labelW)+math.Max(bw, s.Max*scale)+4, y+barH-1, human(s.Med))
				}
				y += barH
			}
			y += gap
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, y+10)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	x := 8
	for _, c := range clients {
		fmt.Fprintf(&b, `<rect x="%d" y="10" width="12" height="12" fill="%s"/><text x="%d" y="20">%s</text>`+"\n",
			x, clientColors[c], x+16, html.EscapeString(c))
		x += 30 + 8*len(c)
	}
	fmt.Fprintf(&b, `<text x="%d" y="20" fill="#555">median of the repetitions; whiskers: min–max</text>`+"\n", x+10)
	b.WriteString(body.String())
	b.WriteString("</svg>\n")
	return b.String()
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
