package bundle

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The zstd frame header carries fields that do not change the decoded bytes
// (the window size when larger than needed, an unused flag bit), so a byte
// flipped there would go unnoticed by the content checksum and the file
// hashes. A bundle is only ever written by Pack, so its header must have one
// of the two forms the writer produces (RFC 8878 §3.1.1.1, checked by
// TestFrameHeaderForms):
//
//   - streamed: descriptor 0x04 (checksum; no content size, no dictionary,
//     not single-segment) and window descriptor 0x50 (packWindow, 1 MiB);
//   - one block (the whole archive fits one block, ≤ 128 KiB): descriptor
//     with single-segment, checksum and a 2- or 4-byte content size, which
//     must then equal the decoded size (checked at the end of the stream).
const (
	zstdMagic        = 0xFD2FB528
	fhdChecksum      = 0x04
	fhdSingleSegment = 0x20
	streamWindowDesc = 0x50 // window log 20 = packWindow
	maxSingleBlock   = 128 << 10
)

// readFrameHeader reads and checks the frame header from r. It returns the
// header bytes (to be given to the decoder again) and the declared content
// size, or -1 when the header declares none.
func readFrameHeader(r io.Reader) (hdr []byte, size int64, why string) {
	buf := make([]byte, 10)
	if _, err := io.ReadFull(r, buf[:6]); err != nil {
		return nil, 0, fmt.Sprintf("reading the zstd frame header: %v", err)
	}
	if binary.LittleEndian.Uint32(buf) != zstdMagic {
		return nil, 0, "not a zstd stream"
	}
	fhd := buf[4]
	switch {
	case fhd == fhdChecksum:
		if buf[5] != streamWindowDesc {
			return nil, 0, fmt.Sprintf("zstd window descriptor %#02x, bundles use %#02x", buf[5], streamWindowDesc)
		}
		return buf[:6], -1, ""
	case fhd == fhdChecksum|fhdSingleSegment|1<<6: // 2-byte size, offset by 256
		if _, err := io.ReadFull(r, buf[6:7]); err != nil {
			return nil, 0, fmt.Sprintf("reading the zstd frame header: %v", err)
		}
		return buf[:7], int64(binary.LittleEndian.Uint16(buf[5:])) + 256, ""
	case fhd == fhdChecksum|fhdSingleSegment|2<<6: // 4-byte size
		if _, err := io.ReadFull(r, buf[6:9]); err != nil {
			return nil, 0, fmt.Sprintf("reading the zstd frame header: %v", err)
		}
		size := int64(binary.LittleEndian.Uint32(buf[5:]))
		if size > maxSingleBlock {
			return nil, 0, fmt.Sprintf("single-segment frame of %d bytes, bundles use them only up to %d", size, maxSingleBlock)
		}
		return buf[:9], size, ""
	}
	return nil, 0, fmt.Sprintf("zstd frame descriptor %#02x is not one a bundle uses", fhd)
}
