package main

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/quantpack/quantpack/hub"
)

// hubCommands read a checkpoint SRC, which may be a Hugging Face Hub id
// (org/name[@revision]); each gets --token and --offline, and resolves its
// SRC with resolveSource.
var hubCommands = []string{"inspect", "convert", "export", "study", "sensitivity"}

// hubHelp goes into those commands' descriptions.
const hubHelp = `A checkpoint may also be named by its Hugging Face Hub id, org/name[@revision]:
a local path of that name wins; else the Hugging Face cache ($HF_HUB_CACHE,
else $HF_HOME/hub, else ~/.cache/huggingface/hub) serves it without a request;
else config.json, preprocessor_config.json, README.md and the safetensors
weights are downloaded from $HF_ENDPOINT into that cache (never pickles: a
repository with only pytorch_model.bin exits 4). HF_TOKEN or --token for
private and gated repositories; --offline or HF_HUB_OFFLINE=1 never touches
the network. See docs/hub.md.

`

// addHubFlags gives every command in hubCommands the Hub flags and help, once.
func addHubFlags(cmds []*cli.Command) {
	for _, c := range cmds {
		if !slices.Contains(hubCommands, c.Name) || slices.ContainsFunc(c.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), "offline") }) {
			continue
		}
		c.Flags = append(c.Flags,
			&cli.StringFlag{Name: "token", Usage: "Hugging Face `TOKEN` for private or gated repositories (the environment keeps it out of ps)", DefaultText: "$HF_TOKEN"},
			&cli.BoolFlag{Name: "offline", Usage: "never use the network: Hub ids come from the cache only (also HF_HUB_OFFLINE=1)"})
		// After the paragraph that says what SRC is.
		if i := strings.Index(c.Description, "\n\n"); i >= 0 {
			c.Description = c.Description[:i+2] + hubHelp + c.Description[i+2:]
		} else {
			c.Description = hubHelp + c.Description
		}
	}
}

// resolveSource is the one place where a command's SRC becomes a local
// path: a local path is returned as is (with a nil source), a Hub id is
// served from the Hugging Face cache or downloaded into it, with a progress
// bar on a terminal.
func resolveSource(c *cli.Context, cmd, arg, src string) (string, *hub.Source, error) {
	if src == "" {
		return "", nil, usagef("%s: %s is empty", cmd, arg)
	}
	opt := hub.Options{Token: c.String("token"), Offline: c.Bool("offline")}
	bar := &downloadBar{name: src}
	opt.Progress = bar.set
	dir, s, err := hub.Resolve(c.Context, src, opt)
	bar.done()
	if err != nil {
		// The one message shape of a bad input: command, argument, value.
		return "", nil, fmt.Errorf("%s: %s %q: %w", cmd, arg, src, err)
	}
	if s != nil {
		return dir, s, nil
	}
	// Not a Hub id: a local path, which must exist (resolveInput says so
	// in the one message shape every command uses).
	p, err := resolveInput(cmd, arg, src)
	return p, nil, err
}

// downloadBar shows bytes, rate and ETA of a download on stderr when it is
// a terminal, and nothing otherwise. The total grows as files are looked up.
type downloadBar struct {
	mu   sync.Mutex
	name string
	p    *mpb.Progress
	bar  *mpb.Bar
}

func (d *downloadBar) set(done, total int64) {
	if !stderrIsTerminal() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p == nil {
		d.p = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40))
		d.bar = d.p.AddBar(total,
			mpb.PrependDecorators(decor.Name(d.name+" "), decor.CountersKibiByte("% .1f / % .1f")),
			mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f"), decor.Name(" ETA "),
				decor.AverageETA(decor.ET_STYLE_MMSS)))
	}
	d.bar.SetTotal(total, false)
	d.bar.SetCurrent(done)
}

func (d *downloadBar) done() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.p != nil {
		if !d.bar.Completed() {
			d.bar.Abort(false)
		}
		d.p.Wait()
	}
}

// resolveSources resolves several SRCs; names maps each resolved Hub
// snapshot to its repository name, for reports.
func resolveSources(c *cli.Context, cmd string, srcs []string) ([]string, map[string]string, error) {
	out := make([]string, len(srcs))
	names := map[string]string{}
	for i, s := range srcs {
		dir, h, err := resolveSource(c, cmd, "SRC", s)
		if err != nil {
			return nil, nil, err
		}
		out[i] = dir
		if h != nil {
			names[dir] = path.Base(h.Repo)
		}
	}
	return out, names, nil
}
