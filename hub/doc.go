// Package hub resolves a Hugging Face Hub model id (org/name[@revision]) to
// a local checkpoint directory, sharing the cache that huggingface_hub and
// transformers use.
//
// Resolution order (Resolve): an existing local path is used as is; else the
// id is looked up in the Hugging Face cache ($HF_HUB_CACHE, else
// $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub); else the needed files are downloaded from
// $HF_ENDPOINT (default https://huggingface.co) into that same cache, laid
// out byte for byte as huggingface_hub lays it out:
//
//	models--org--name/
//	  refs/<revision>                 the commit hash, no newline
//	  blobs/<etag>                    sha256 (LFS) or git blob sha1 (regular files)
//	  blobs/<etag>.incomplete         a partial download, resumed with Range
//	  snapshots/<commit>/<file>       relative symlink to ../../blobs/<etag>
//	  .no_exist/<commit>/<file>       empty marker: the file is not in the repo
//	.locks/models--org--name/<etag>.lock
//
// The layout is specified in the Hub's "Local Cache" documentation
// (https://huggingface.co/docs/hub/local-cache) and implemented by
// huggingface_hub's file_download.py; docs/hub.md says how quantpack's
// equivalence was established.
//
// Only what quantpack reads is downloaded: config.json,
// preprocessor_config.json, README.md (for the license) and the safetensors
// weights (model.safetensors, or model.safetensors.index.json and its
// shards). Pickled weights are never fetched. LFS files are verified against
// their sha256 and regular files against their git blob sha1 while they
// stream; a blob is renamed into place only when complete and verified, and
// linked into the snapshot only then.
package hub
