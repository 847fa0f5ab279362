package bundle

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/quantpack/quantpack/internal/fault"
)

// ErrAllowedSigners: the allowed-signers file cannot be parsed.
var ErrAllowedSigners = fault.New(fault.Invalid, "bundle: invalid allowed signers file")

// maxAllowedSigners caps the allowed-signers file, read into memory.
const maxAllowedSigners = 4 << 20

// AllowedSigner is one line of an OpenSSH allowed_signers file (ssh-keygen(1),
// "ALLOWED SIGNERS"): principals, options, a public key.
type AllowedSigner struct {
	Line          int
	Principals    []string // patterns, as written (comma-separated in the file)
	Namespaces    []string // nil: any namespace
	CertAuthority bool
	ValidAfter    time.Time // zero: no bound
	ValidBefore   time.Time
	Key           ssh.PublicKey
}

// TrustPolicy is what check and unpack require of a signed bundle: a valid
// signature by a key listed in AllowedSigners, whose principals match
// Identity when one is given, whose namespaces option (if any) allows
// SignNamespace and whose validity interval holds Now.
type TrustPolicy struct {
	File           string // for messages
	AllowedSigners []AllowedSigner
	Identity       string
	Now            time.Time // zero: time.Now()
}

// ParseAllowedSigners reads an allowed_signers file. Blank lines and lines
// starting with # are skipped. Options are cert-authority, namespaces="…",
// valid-after="…" and valid-before="…" (YYYYMMDD[HHMM[SS]][Z], local time
// without Z). A line that does not parse is an error naming the line: a
// policy file read wrongly is a security problem, not a warning.
func ParseAllowedSigners(r io.Reader, name string) ([]AllowedSigner, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxAllowedSigners+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAllowedSigners {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", name, ErrAllowedSigners, maxAllowedSigners)
	}
	var out []AllowedSigner
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), maxAllowedSigners)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := parseSignerLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w: %v", name, n, ErrAllowedSigners, err)
		}
		s.Line = n
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrAllowedSigners, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w: no signer lines", name, ErrAllowedSigners)
	}
	return out, nil
}

func parseSignerLine(line string) (AllowedSigner, error) {
	var s AllowedSigner
	principals, rest, err := nextToken(line)
	if err != nil {
		return s, err
	}
	s.Principals = strings.Split(principals, ",")
	for _, p := range s.Principals {
		if p == "" {
			return s, fmt.Errorf("empty principal in %q", principals)
		}
	}
	// Options come before the key when the next token is not a key type.
	if tok, after, err := nextToken(rest); err == nil && !isKeyType(tok) {
		if err := s.parseOptions(tok); err != nil {
			return s, err
		}
		rest = after
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(rest)))
	if err != nil {
		return s, fmt.Errorf("public key: %v", err)
	}
	s.Key = key
	return s, nil
}

func isKeyType(t string) bool {
	return strings.HasPrefix(t, "ssh-") || strings.HasPrefix(t, "ecdsa-") || strings.HasPrefix(t, "sk-")
}

// nextToken splits off the first whitespace-separated token; double quotes
// group (and are removed from) the token.
func nextToken(s string) (tok, rest string, err error) {
	s = strings.TrimLeft(s, " \t")
	var b strings.Builder
	quoted := false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			quoted = !quoted
			b.WriteByte(c)
			continue
		}
		if !quoted && (c == ' ' || c == '\t') {
			break
		}
		b.WriteByte(c)
	}
	if quoted {
		return "", "", fmt.Errorf("unterminated quote in %q", s)
	}
	if b.Len() == 0 {
		return "", "", fmt.Errorf("missing field")
	}
	return b.String(), s[i:], nil
}

func (s *AllowedSigner) parseOptions(opts string) error {
	for _, o := range splitOptions(opts) {
		k, v, hasV := strings.Cut(o, "=")
		v = strings.Trim(v, `"`)
		switch strings.ToLower(k) {
		case "cert-authority":
			s.CertAuthority = true
		case "namespaces":
			if !hasV {
				return fmt.Errorf("namespaces needs a value")
			}
			s.Namespaces = strings.Split(v, ",")
		case "valid-after", "valid-before":
			t, err := parseSSHTime(v)
			if err != nil {
				return fmt.Errorf("%s: %v", k, err)
			}
			if k == "valid-after" {
				s.ValidAfter = t
			} else {
				s.ValidBefore = t
			}
		default:
			return fmt.Errorf("unknown option %q", k)
		}
	}
	return nil
}

// splitOptions splits on commas outside double quotes.
func splitOptions(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// parseSSHTime reads the time format of ssh-keygen's validity options.
func parseSSHTime(v string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(v, "Z") || strings.HasSuffix(v, "z") {
		v, loc = v[:len(v)-1], time.UTC
	}
	for _, layout := range []string{"20060102", "200601021504", "20060102150405"} {
		if len(v) == len(layout) {
			return time.ParseInLocation(layout, v, loc)
		}
	}
	return time.Time{}, fmt.Errorf("time %q is not YYYYMMDD[HHMM[SS]][Z]", v)
}

// allows returns the first allowed-signers line that accepts key for this
// policy, or nil and why none does.
func (p *TrustPolicy) allows(key ssh.PublicKey) (*AllowedSigner, string) {
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	why := fmt.Sprintf("key %s is not in %s", ssh.FingerprintSHA256(key), p.File)
	want := key.Marshal()
	for i := range p.AllowedSigners {
		s := &p.AllowedSigners[i]
		if !bytes.Equal(s.Key.Marshal(), want) {
			continue
		}
		switch {
		case s.CertAuthority:
			why = fmt.Sprintf("line %d is a cert-authority line; certificate signatures are not supported", s.Line)
		case p.Identity != "" && !matchPatternList(p.Identity, s.Principals):
			why = fmt.Sprintf("key is listed (line %d) for %s, not for identity %q", s.Line, strings.Join(s.Principals, ","), p.Identity)
		case s.Namespaces != nil && !matchPatternList(SignNamespace, s.Namespaces):
			why = fmt.Sprintf("line %d allows namespaces %s, not %q", s.Line, strings.Join(s.Namespaces, ","), SignNamespace)
		case !s.ValidAfter.IsZero() && now.Before(s.ValidAfter):
			why = fmt.Sprintf("line %d is valid only after %s", s.Line, s.ValidAfter.Format(time.RFC3339))
		case !s.ValidBefore.IsZero() && !now.Before(s.ValidBefore):
			why = fmt.Sprintf("line %d expired at %s", s.Line, s.ValidBefore.Format(time.RFC3339))
		default:
			return s, ""
		}
	}
	return nil, why
}

// matchPatternList reports whether s matches a list of OpenSSH patterns
// (match_pattern_list): * and ? wildcards; a pattern starting with ! that
// matches makes the whole list fail.
func matchPatternList(s string, patterns []string) bool {
	matched := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		if neg {
			p = p[1:]
		}
		if wildcardMatch(p, s) {
			if neg {
				return false
			}
			matched = true
		}
	}
	return matched
}

// wildcardMatch matches s against an OpenSSH pattern: * is any run of
// characters (separators included), ? any one character, nothing else is
// special.
func wildcardMatch(p, s string) bool {
	star, mark := -1, 0
	i, j := 0, 0
	for j < len(s) {
		switch {
		case i < len(p) && (p[i] == '?' || p[i] == s[j]):
			i++
			j++
		case i < len(p) && p[i] == '*':
			star, mark = i, j
			i++
		case star >= 0:
			i, mark = star+1, mark+1
			j = mark
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}
