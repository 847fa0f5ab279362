package ort

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/quantpack/quantpack/verify"
)

// CPUProvider is the name ONNX Runtime gives its CPU execution provider.
const CPUProvider = "CPUExecutionProvider"

// nodePlacement is one node and the execution provider that runs it.
type nodePlacement struct {
	name, op, provider string
}

// kernelSuffix ends the name of the profile event that times a node's
// kernel; the rest of the name is the node's name.
const kernelSuffix = "_kernel_time"

// profileEvent is the part of an ONNX Runtime profile event that Placement
// needs. The profile is a JSON array of Chrome-trace events; node events
// have cat "Node" and carry args.op_name and args.provider.
type profileEvent struct {
	Cat  string `json:"cat"`
	Name string `json:"name"`
	Args struct {
		OpName   string `json:"op_name"`
		Provider string `json:"provider"`
	} `json:"args"`
}

// ParseProfile reads an ONNX Runtime profile (the JSON file that
// EndProfiling names) and returns which execution provider ran each node,
// in the order the nodes first ran. A node that ran several times is counted
// once. FellBackToCPU is left 0: only the caller knows which device it asked
// for (see Session.Placement). Malformed input gives an error wrapping
// ErrProfile with the byte offset.
func ParseProfile(r io.Reader) (verify.Placement, error) {
	nodes, err := parseProfile(r)
	if err != nil {
		return verify.Placement{}, err
	}
	return summarize(nodes, DeviceCPU), nil
}

func parseProfile(r io.Reader) ([]nodePlacement, error) {
	dec := json.NewDecoder(r)
	bad := func(format string, args ...any) error {
		return errorf(ErrProfile, "parse profile", "", "", "at byte %d: %s", dec.InputOffset(), fmt.Sprintf(format, args...))
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, bad("%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, bad("want a JSON array of events, found %v", tok)
	}
	seen := make(map[string]bool)
	var nodes []nodePlacement
	for dec.More() {
		var ev profileEvent
		if err := dec.Decode(&ev); err != nil {
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) {
				return nil, bad("event field %q has the wrong type", ute.Field)
			}
			return nil, bad("%v", err)
		}
		if ev.Cat != "Node" || ev.Args.Provider == "" {
			continue
		}
		name := strings.TrimSuffix(ev.Name, kernelSuffix)
		if seen[name] {
			continue
		}
		seen[name] = true
		nodes = append(nodes, nodePlacement{name: name, op: ev.Args.OpName, provider: ev.Args.Provider})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return nil, bad("unterminated event array")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("data after the event array")
	}
	return nodes, nil
}

// summarize counts nodes per provider. On a session that asked for device
// other than the CPU, nodes on the CPU provider are fallbacks.
func summarize(nodes []nodePlacement, device string) verify.Placement {
	p := verify.Placement{Providers: make(map[string]int)}
	for _, n := range nodes {
		p.Providers[n.provider]++
		p.Nodes = append(p.Nodes, n.name+" "+n.op+" "+n.provider)
		if device != DeviceCPU && n.provider == CPUProvider {
			p.FellBackToCPU++
		}
	}
	return p
}
