package main

import (
	"crypto/ed25519"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/quantpack/quantpack/internal/testenv"
)

// sshKeygen returns OpenSSH's ssh-keygen, skipping (failing in CI, where
// `make test` installs it) when it is absent.
func sshKeygen(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		testenv.SkipOrFail(t, "ssh-keygen not found (Debian package openssh-client): the SSHSIG interop test needs it")
	}
	return p
}

func runTool(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Interop both ways with OpenSSH: a signature quantpack makes verifies with
// `ssh-keygen -Y verify` over the provenance any tar extracts, and one that
// `ssh-keygen -Y sign` makes over it is accepted by `quantpack sign
// --signature` and then satisfies `check` and `unpack --allowed-signers`.
func TestSignInteropWithSSHKeygen(t *testing.T) {
	kg := sshKeygen(t)
	dir := t.TempDir()
	key, key2 := filepath.Join(dir, "id"), filepath.Join(dir, "id2")
	runTool(t, "", kg, "-q", "-t", "ed25519", "-N", "", "-C", "ci@example.com", "-f", key)
	runTool(t, "", kg, "-q", "-t", "ecdsa", "-N", "", "-C", "dev@example.com", "-f", key2)
	allowed := filepath.Join(dir, "allowed_signers")
	var lines string
	for who, k := range map[string]string{"ci@example.com": key, "dev@example.com": key2} {
		pub, err := os.ReadFile(k + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(pub))
		lines += who + ` namespaces="quantpack" ` + f[0] + " " + f[1] + "\n"
	}
	if err := os.WriteFile(allowed, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}

	art := bundleArtifact(t)
	b := filepath.Join(dir, "art.tar.zst")
	qp(t, "pack", art, "-o", b, "--sign-key", key).ok(t)
	res := qp(t, "check", b, "--allowed-signers", allowed, "--identity", "ci@example.com", "--json").ok(t).json(t)
	if res["trusted"] != true {
		t.Fatalf("check: %v", res)
	}
	sigs := res["signatures"].([]any)
	armored := sigs[0].(map[string]any)["sshsig"].(string)

	// quantpack → ssh-keygen: verify over the provenance extracted by unpack.
	out := filepath.Join(dir, "out")
	qp(t, "unpack", b, "-o", out, "--allowed-signers", allowed, "--identity", "ci@example.com").ok(t)
	prov := filepath.Join(out, "quantpack.provenance.json")
	sigFile := filepath.Join(dir, "q.sig")
	os.WriteFile(sigFile, []byte(armored), 0o644)
	if got := runTool(t, prov, kg, "-Y", "verify", "-f", allowed, "-I", "ci@example.com", "-n", "quantpack", "-s", sigFile); !strings.Contains(got, "Good") {
		t.Errorf("ssh-keygen -Y verify: %s", got)
	}

	// ssh-keygen → quantpack: sign the provenance with the second key, attach.
	runTool(t, "", kg, "-Y", "sign", "-n", "quantpack", "-f", key2, prov)
	qp(t, "sign", b, "--signature", prov+".sig").ok(t)
	res = qp(t, "check", b, "--allowed-signers", allowed, "--identity", "dev@example.com", "--json").ok(t).json(t)
	if res["trusted"] != true || len(res["signatures"].([]any)) != 2 {
		t.Fatalf("after attaching ssh-keygen's signature: %v", res)
	}
	// An unlisted identity is refused with exit 3, and nothing is extracted.
	qp(t, "check", b, "--allowed-signers", allowed, "--identity", "eve@example.com").wantCode(t, 3, "eve@example.com")
	out2 := filepath.Join(dir, "out2")
	qp(t, "unpack", b, "-o", out2, "--allowed-signers", allowed, "--identity", "eve@example.com").wantCode(t, 3, "signature")
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("refused unpack left %s", out2)
	}
	// A signature in another namespace (git's) is refused by sign.
	os.Remove(prov + ".sig")
	runTool(t, "", kg, "-Y", "sign", "-n", "git", "-f", key, "-O", "hashalg=sha256", prov)
	os.Rename(prov+".sig", filepath.Join(dir, "git.sig"))
	qp(t, "sign", b, "--signature", filepath.Join(dir, "git.sig")).wantCode(t, 3, "namespace")
	// Usage errors.
	qp(t, "sign", b).wantCode(t, 2)
	qp(t, "check", b, "--identity", "x").wantCode(t, 2)
}

// --sign-key with a .pub whose key ssh-agent holds signs through the agent
// (an in-process agent speaking the real protocol on a unix socket).
func TestPackSignsWithAgent(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	ring := agent.NewKeyring()
	if err := ring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(ring, c); c.Close() }()
		}
	}()
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "id.pub")
	os.WriteFile(pubFile, ssh.MarshalAuthorizedKey(pub), 0o644)
	allowed := filepath.Join(dir, "allowed")
	os.WriteFile(allowed, append([]byte("ci@example.com "), ssh.MarshalAuthorizedKey(pub)...), 0o644)

	b := filepath.Join(t.TempDir(), "b.tar.zst")
	qpEnv(t, []string{"SSH_AUTH_SOCK=" + sock}, "pack", bundleArtifact(t), "-o", b, "--sign-key", pubFile).ok(t)
	qp(t, "check", b, "--allowed-signers", allowed).ok(t)
	// Without an agent the .pub cannot sign: a usage error saying why.
	qpEnv(t, []string{"SSH_AUTH_SOCK="}, "sign", b, "--key", pubFile).wantCode(t, 2, "SSH_AUTH_SOCK")
}
