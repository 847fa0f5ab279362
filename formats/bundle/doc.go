// Package bundle packs a quantpack artifact directory into one deployable
// file, unpacks it safely and checks it, for `quantpack pack`, `unpack` and
// `check`. docs/bundle.md describes the format, the JSON the commands print
// and the measurements behind the compression level.
//
// A bundle is a POSIX tar archive (pax format where needed; see
// https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html)
// compressed as one Zstandard frame (RFC 8878,
// https://www.rfc-editor.org/rfc/rfc8878) with its content checksum, then a
// zstd skippable frame with the sha256 of all bytes before it (trailer.go).
// Any tar and zstd can list and extract it (`tar --zstd -xf`), but only
// Unpack checks it:
//
//   - The first entry is quantpack.json, the artifact's manifest. Its
//     "files" member lists every other entry with size and sha256. Its pax
//     header carries the record QUANTPACK.bundle_version=1 (FormatVersion).
//   - Every other entry is a regular file with a clean relative name, listed
//     in the manifest, in byte order of the names. Mode 0644, owner 0:0, no
//     owner names, time 0: the same directory always gives the same bytes.
//
// Everything read from a bundle is treated as hostile: names, types, sizes
// and counts are checked against named limits before anything is allocated
// or written, files are hashed as they stream, and the zstd stream is read to
// its end so that its checksum is verified. Errors are an *EntryError
// (entry index, name, offset in the tar stream) or a *FileError wrapping
// one of the ErrXxx sentinels; all corrupt-input sentinels have the class
// fault.Invalid (exit 3).
package bundle
