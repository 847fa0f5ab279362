package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
)

// The last bytes of a bundle are a zstd skippable frame (RFC 8878 §3.1.2)
// holding the sha256 of every byte before it. zstd decoders skip it, so the
// bundle stays an ordinary tar.zst; the reader checks it, which makes every
// byte of the file matter: zstd has bits that do not change the decoded
// output (the padding after a table description, the window size when
// larger than needed, an unused header flag), and a byte flipped there would
// pass the content checksum and the file hashes. Data appended after the
// trailer is refused the same way.
const (
	trailerMagic = 0x184D2A5E // one of the sixteen skippable-frame magic numbers
	trailerTag   = "QPB1"     // quantpack bundle, trailer layout 1
	trailerLen   = 8 + len(trailerTag) + sha256.Size
)

// trailer returns the skippable frame that ends a bundle whose preceding
// bytes hash to sum.
func trailer(sum []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, trailerMagic)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(trailerTag)+len(sum)))
	b = append(b, trailerTag...)
	return append(b, sum...)
}

// tailHasher hashes a stream except its last trailerLen bytes, which it
// keeps for checkTrailer.
type tailHasher struct {
	h    hash.Hash
	tail []byte
}

func newTailHasher() *tailHasher {
	return &tailHasher{h: sha256.New(), tail: make([]byte, 0, 2*trailerLen)}
}

func (t *tailHasher) write(p []byte) {
	// The logical stream is tail+p; all but its last trailerLen bytes can
	// be hashed now.
	excess := len(t.tail) + len(p) - trailerLen
	if excess <= 0 {
		t.tail = append(t.tail, p...)
		return
	}
	fromTail := min(excess, len(t.tail))
	t.h.Write(t.tail[:fromTail])
	t.h.Write(p[:excess-fromTail])
	t.tail = append(t.tail[:0], t.tail[fromTail:]...)
	t.tail = append(t.tail, p[excess-fromTail:]...)
}

// check reports why the kept tail is not the trailer of the hashed bytes,
// or "" when it is.
func (t *tailHasher) check() string {
	if len(t.tail) < trailerLen {
		return "bundle shorter than its trailer"
	}
	want := trailer(t.h.Sum(nil))
	if !bytes.Equal(t.tail[:8+len(trailerTag)], want[:8+len(trailerTag)]) {
		return fmt.Sprintf("no bundle trailer (last %d bytes are not the sha256 frame)", trailerLen)
	}
	if !bytes.Equal(t.tail, want) {
		return fmt.Sprintf("compressed bytes hash to %x, trailer says %x", want[8+len(trailerTag):], t.tail[8+len(trailerTag):])
	}
	return ""
}

// lastBytes keeps the last n bytes written to it (the trailer and the
// signature frame before it), in amortised constant time per byte.
type lastBytes struct {
	n   int
	buf []byte
}

func (l *lastBytes) write(p []byte) {
	if len(p) >= l.n {
		l.buf = append(l.buf[:0], p[len(p)-l.n:]...)
		return
	}
	if len(l.buf)+len(p) > 2*l.n {
		keep := l.n - len(p)
		l.buf = append(l.buf[:0], l.buf[len(l.buf)-keep:]...)
	}
	l.buf = append(l.buf, p...)
}

func (l *lastBytes) bytes() []byte {
	if len(l.buf) > l.n {
		return l.buf[len(l.buf)-l.n:]
	}
	return l.buf
}
