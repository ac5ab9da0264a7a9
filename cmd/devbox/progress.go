package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/devbox/devbox/rootfs"
)

// progress shows downloads as bars on a terminal and as plain lines
// otherwise (CI logs, pipes).
type progress struct {
	out io.Writer
	p   *mpb.Progress // nil when not a terminal
	mu  sync.Mutex
}

func newProgress(out io.Writer) *progress {
	pr := &progress{out: out}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		pr.p = mpb.New(mpb.WithOutput(out), mpb.WithWidth(40))
	}
	return pr
}

// Wait lets the bars finish drawing.
func (pr *progress) Wait() {
	if pr.p != nil {
		pr.p.Wait()
	}
}

// Log prints a note above the bars.
func (pr *progress) Log(msg string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.p != nil {
		fmt.Fprintln(pr.p, msg)
		return
	}
	fmt.Fprintln(pr.out, msg)
}

func (pr *progress) Layer(id string, size int64) rootfs.LayerProgress {
	if pr.p == nil {
		return &plainLayer{pr: pr, id: id, size: size}
	}
	bar := pr.p.AddBar(max(size, 0),
		mpb.PrependDecorators(decor.Name(id+" "), decor.OnComplete(decor.CountersKibiByte("% .1f / % .1f"), "done")),
		mpb.AppendDecorators(decor.OnComplete(decor.AverageSpeed(decor.SizeB1024(0), "% .1f"), "")),
		mpb.BarRemoveOnComplete(),
	)
	return &barLayer{pr: pr, bar: bar, id: id}
}

type barLayer struct {
	pr  *progress
	bar *mpb.Bar
	id  string
	n   int64
}

func (b *barLayer) Add(n int64) {
	b.n += n
	if b.n > b.bar.Current() && b.bar.Current() >= 0 {
		b.bar.IncrInt64(n)
	}
}

func (b *barLayer) Done(cached bool, err error) {
	switch {
	case err != nil:
		b.bar.Abort(true)
		b.pr.Log(fmt.Sprintf("%s failed: %v", b.id, err))
	case cached:
		b.bar.Abort(true)
		b.pr.Log(b.id + " already present")
	default:
		b.bar.SetTotal(-1, true)
		b.pr.Log(fmt.Sprintf("%s unpacked (%s)", b.id, humanBytes(b.n)))
	}
}

type plainLayer struct {
	pr   *progress
	id   string
	size int64
	n    int64
}

func (l *plainLayer) Add(n int64) { l.n += n }

func (l *plainLayer) Done(cached bool, err error) {
	switch {
	case err != nil:
		l.pr.Log(fmt.Sprintf("layer %s: failed: %v", l.id, err))
	case cached:
		l.pr.Log(fmt.Sprintf("layer %s: already present", l.id))
	default:
		l.pr.Log(fmt.Sprintf("layer %s: unpacked (%s)", l.id, humanBytes(l.n)))
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
