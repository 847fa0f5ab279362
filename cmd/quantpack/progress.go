package main

import (
	"os"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress draws a byte-count bar on stderr when stderr is a terminal and
// does nothing otherwise, so logs and CI output stay clean.
type progress struct {
	mu    sync.Mutex
	name  string
	p     *mpb.Progress
	bar   *mpb.Bar
	total int64
}

func newProgress(name string) *progress { return &progress{name: name} }

// Set records done of total bytes; safe from several goroutines.
func (p *progress) Set(done, total int64) {
	if p == nil || !stderrIsTerminal() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p == nil {
		p.p = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40))
		p.total = total
		p.bar = p.p.AddBar(total,
			mpb.PrependDecorators(decor.Name(p.name+" "), decor.CountersKibiByte("% .1f / % .1f")),
			mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")))
	}
	p.bar.SetCurrent(done)
}

// Done finishes the bar.
func (p *progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p != nil {
		if !p.bar.Completed() {
			p.bar.Abort(false)
		}
		p.p.Wait()
	}
}
